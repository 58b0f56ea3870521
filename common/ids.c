/* ids.c: to be written */
