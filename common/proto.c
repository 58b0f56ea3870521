/* proto.c: to be written */
