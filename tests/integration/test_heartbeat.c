/* test_heartbeat.c: server pings (contract section 3): with --heartbeat 1 a
 * client that never answers is dropped after about two periods; one that
 * answers stays. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <stdlib.h>
#include <string.h>

#include "itest.h"

static void hb_init(void)
{
    it_redis_init();
    struct it_gw_conf c = {.heartbeat = "1"};
    it_gateway_start(&c);
    it_worker_start(NULL);
}

TestSuite(heartbeat, .init = hb_init, .fini = it_end, .timeout = 60);

Test(heartbeat, hello_announces_period)
{
    struct ws *a = it_open(it_port(), "alice", NULL);
    json_t *hb = json_object_get(a->hello, "heartbeat");
    cr_assert(json_is_number(hb) && json_number_value(hb) == 1, "--heartbeat 1: hello says %s", jdump(a->hello));
    ws_free(a);
}

Test(heartbeat, silent_client_dropped)
{
    struct ws *a = it_open(it_port(), "alice", NULL);
    a->auto_pong = 0;
    int64_t t0 = it_mono_ms();
    int code = ws_wait_close(a, it_ms(8000));
    int64_t took = it_mono_ms() - t0;
    cr_assert(code != -1, "a client answering no ping is still connected after 8 s with --heartbeat 1 (%d pings)",
              a->pings);
    cr_assert(a->pings >= 1, "closed (%d) without ever being pinged", code);
    /* two periods of silence, plus up to a period of timer granularity */
    cr_assert(took >= 1000, "dropped after %lld ms, before two periods could pass", (long long)took);
    ws_free(a);

    /* presence follows */
    struct ws *b = it_open(it_port(), "bob", NULL);
    int64_t deadline = it_mono_ms() + it_ms(5000);
    const char *state = "";
    for (int i = 0; i < 200 && it_mono_ms() < deadline; i++) {
        char id[16];
        snprintf(id, sizeof(id), "p%d", i);
        json_t *r = it_req_op(b, json_pack("{s:s,s:s,s:[s]}", "op", "presence", "id", id, "users", "alice"),
                              "presence");
        state = strcmp(js(json_object_get(r, "users"), "alice"), "offline") == 0 ? "offline" : "online";
        json_decref(r);
        if (strcmp(state, "offline") == 0)
            break;
        it_pause_ms(50);
    }
    cr_assert_str_eq(state, "offline", "alice still online after being dropped");
    ws_free(b);
}

Test(heartbeat, answering_client_stays)
{
    struct ws *a = it_open(it_port(), "alice", NULL);
    /* idle but answering pings: still open after several periods */
    int op;
    unsigned char *data;
    size_t len;
    int r = ws_recv_msg(a, &op, &data, &len, it_ms(4500));
    cr_assert_eq(r, -1, "an answering client was closed (%d) or sent data", a->close_code);
    cr_assert(a->pings >= 3, "only %d pings in 4.5 s with --heartbeat 1", a->pings);
    json_decref(it_req_op(a, json_pack("{s:s,s:s}", "op", "convs", "id", "1"), "convs"));
    ws_free(a);
}
