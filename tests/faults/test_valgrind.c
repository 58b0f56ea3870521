/* test_valgrind.c: one complete chat scenario with the gateway (master and
 * two children) and the worker running under valgrind (issue 3, point 6).
 * A replica is attached, so the worker's acks wait for it. Run by
 * valgrind.sh, which sets CHATMI_IT_VALGRIND=1: the harness then
 * starts both programs under valgrind --leak-check=full with definite and
 * indirect leaks counted as errors. The scenario ends with an orderly
 * SIGTERM of both, so every process writes its leak report, and the test
 * fails on any error, any leak, a missing report or an exit status other
 * than 0. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "itest.h"

TestSuite(valgrind, .init = it_redis_init, .fini = it_end, .timeout = 900);

static void assert_exit0(const char *what, int st)
{
    cr_assert(WIFEXITED(st), "%s died of signal %d", what, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    cr_assert_eq(WEXITSTATUS(st), 0, "%s exited with %d (99: valgrind found errors)", what, WEXITSTATUS(st));
}

Test(valgrind, chat_scenario)
{
    if (!it_valgrind())
        cr_skip_test("CHATMI_IT_VALGRIND is not set (valgrind.sh sets it)");
    if (!it_cluster_active())
        it_redis_replica_start(); /* so the worker's acks wait for it (WAIT); a cluster's masters have theirs */
    it_gateway_start(NULL);
    it_worker_start(NULL);
    cr_assert(it_log_wait_count("worker0", "\"event\":\"replicas\"", 1, it_ms(10000)),
              "the worker did not see the replica");

    /* JSON and MessagePack sessions, a room, DMs, history, convs, presence */
    struct ws *a = it_open(it_port(), "alice", NULL);
    struct ws *b = it_open(it_port(), "bob", IT_SUBPROTO_MSGPACK);
    it_join(a, "j1", "general");
    it_join(b, "j2", "general");
    json_t *ack = it_room_send(a, "s1", "general", "hello room");
    cr_assert_eq(ji(ack, "seq"), 1);
    json_decref(ack);
    json_decref(it_deliv(b, "room:general", 1));
    ack = it_dm(b, "s2", "alice", "hello alice");
    json_decref(ack);
    json_decref(it_deliv(a, "dm:alice:bob", 1));
    /* a retry with the same id is acked from the store */
    ack = it_dm(b, "s2", "alice", "hello alice");
    cr_assert_eq(ji(ack, "seq"), 1, "retry: %s", jdump(ack));
    json_decref(ack);
    json_t *h = it_history(a, "h1", "room:general", "after", 0, 0);
    it_assert_seq_range(json_object_get(h, "messages"), 1, 1, "room history");
    json_decref(h);
    json_decref(it_req_op(a, json_pack("{s:s,s:s}", "op", "convs", "id", "c1"), "convs"));
    json_decref(it_req_op(a, json_pack("{s:s,s:s,s:[s,s]}", "op", "presence", "id", "p1", "users", "bob", "carol"),
                          "presence"));
    /* errors: a bad request, a room one is not in, too large */
    it_req_err_drop(a, json_pack("{s:s,s:s}", "op", "send", "id", "e1"), "bad_request");
    it_req_err_drop(a, json_pack("{s:s,s:s,s:s,s:s}", "op", "send", "id", "e2", "room", "secret", "text", "x"),
                    "not_found");
    json_decref(it_req_op(b, json_pack("{s:s,s:s,s:s}", "op", "leave", "id", "l1", "room", "general"), "left"));
    /* a session that goes away abruptly, and a new one of the same user */
    ws_free(a);
    a = it_open(it_port(), "alice", NULL);
    ack = it_room_send(a, "s3", "general", "after reconnect");
    cr_assert_eq(ji(ack, "seq"), 2);
    json_decref(ack);
    ws_free(a);
    ws_free(b);

    int st = -1;
    cr_assert(it_gateway_signal_wait(0, SIGTERM, it_ms(60000), &st), "the gateway did not stop on SIGTERM");
    assert_exit0("chatmi-gateway", st);
    cr_assert(it_worker_signal_wait(0, SIGTERM, it_ms(60000), &st), "the worker did not stop on SIGTERM");
    assert_exit0("chatmi-worker", st);
    int files = 0, missing = 0;
    int bad = it_valgrind_check(&files, &missing);
    cr_assert_eq(bad, 0, "%d process(es) reported valgrind errors or leaks (logs above)", bad);
    cr_assert_eq(missing, 0, "%d process(es) left no valgrind summary", missing);
    /* master, two children, worker */
    cr_assert_geq(files, 4, "only %d valgrind reports, expected one per process (4)", files);
    fprintf(stderr, "valgrind: %d processes, 0 errors, 0 leaks\n", files);
}
