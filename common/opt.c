/* opt.c: to be written */
