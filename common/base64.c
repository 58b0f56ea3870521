/* base64.c: to be written */
