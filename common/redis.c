/* redis.c: to be written */
