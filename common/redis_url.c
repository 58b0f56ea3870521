/* redis_url.c: to be written */
