/* clock.c: to be written */
