/* handshake.c: to be written */
