/* test_cluster.c: the harness's Redis Cluster (cluster.c), checked on its
 * own, without chatmi (programs it_cluster; tests/faults has the probes'
 * check, cluster_probes_follow_slots).
 *
 * Why: the cluster runs of the integration suite (cluster.sh) and the
 * cluster fault cases trust the harness to start a healthy 3-master,
 * 3-replica cluster, to kill a master and wait for its replica's
 * promotion, and to move slots. Those runs can only pass once the gateway
 * and the worker speak Redis Cluster; this program proves the harness part
 * now. Every check goes through redis-cli directly (redis-cli --cluster
 * check, INFO replication, ROLE, GET without -c), not through the parsing
 * the harness does, so a harness bug cannot hide itself. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "itest.h"

TestSuite(cluster, .init = it_begin, .fini = it_end, .timeout = 150);

/* redis-cli on a node, without -c (it_redis_cli adds -c in a cluster). */
static int raw_cli(int port, const char *const *args, char *out, size_t outlen)
{
    char bin[PATH_MAX], srv[PATH_MAX], ports[16];
    const char *rs = it_which(getenv("REDIS_SERVER") != NULL ? getenv("REDIS_SERVER") : "redis-server", srv,
                              sizeof(srv));
    const char *slash = rs != NULL ? strrchr(rs, '/') : NULL;
    if (slash != NULL)
        snprintf(bin, sizeof(bin), "%.*s/redis-cli", (int)(slash - rs), rs);
    if (slash == NULL || it_which(bin, bin, sizeof(bin)) == NULL)
        cr_assert_not_null(it_which("redis-cli", bin, sizeof(bin)), "no redis-cli");
    snprintf(ports, sizeof(ports), "%d", port);
    const char *argv[32] = {bin, "-h", "127.0.0.1", "-p", ports};
    int n = 5;
    for (const char *const *a = args; *a != NULL && n < 31; a++)
        argv[n++] = *a;
    argv[n] = NULL;
    int st = 0;
    cr_assert_eq(it_run(argv, NULL, it_ms(30000), out, outlen, &st), 0, "redis-cli did not finish");
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* "redis-cli --cluster check" of the cluster: its output, asserted clean. */
static void cluster_check(int port, char *out, size_t outlen)
{
    char entry[32];
    snprintf(entry, sizeof(entry), "127.0.0.1:%d", port);
    const char *args[] = {"--cluster", "check", entry, NULL};
    int rc = raw_cli(port, args, out, outlen);
    cr_assert_eq(rc, 0, "redis-cli --cluster check: status %d:\n%s", rc, out);
    cr_assert_not_null(strstr(out, "[OK] All nodes agree about slots configuration."), "%s", out);
    cr_assert_not_null(strstr(out, "[OK] All 16384 slots covered."), "%s", out);
    cr_assert_null(strstr(out, "[WARNING]"), "%s", out);
    cr_assert_null(strstr(out, "[ERR]"), "%s", out);
}

/* From a --cluster check summary line "127.0.0.1:<port> (<id>...) -> K keys
 * | S slots | R slaves.": S and R of the master on port; -1 when absent. */
static int check_slots(const char *out, int port, int *replicas)
{
    char needle[48];
    snprintf(needle, sizeof(needle), "127.0.0.1:%d (", port);
    const char *p = strstr(out, needle);
    const char *nl = p != NULL ? strchr(p, '\n') : NULL;
    const char *bar = p != NULL ? strstr(p, "| ") : NULL;
    if (p == NULL || bar == NULL || (nl != NULL && bar > nl) || strstr(p, "->") > (nl != NULL ? nl : bar))
        return -1;
    int slots = atoi(bar + 2);
    const char *bar2 = strstr(bar + 2, "| ");
    if (replicas != NULL)
        *replicas = bar2 != NULL && (nl == NULL || bar2 < nl) ? atoi(bar2 + 2) : -1;
    return slots;
}

static void node_info(int port, const char *section, char *out, size_t outlen)
{
    const char *args[] = {"INFO", section, NULL};
    cr_assert_eq(raw_cli(port, args, out, outlen), 0, "INFO %s on %d: %s", section, port, out);
}

Test(cluster, start_covers_every_slot_with_three_replicated_masters)
{
    it_cluster_start(3, 1);
    cr_assert_eq(it_cluster_nodes(), 6);
    static char out[65536];
    cluster_check(it_cluster_port(0), out, sizeof(out));
    int masters = 0, total = 0;
    for (int i = 0; i < 6; i++) {
        int port = it_cluster_port(i);
        char info[8192];
        const char *ci[] = {"CLUSTER", "INFO", NULL};
        cr_assert_eq(raw_cli(port, ci, info, sizeof(info)), 0);
        cr_assert_not_null(strstr(info, "cluster_state:ok"), "node %d: %s", i, info);
        cr_assert_not_null(strstr(info, "cluster_known_nodes:6"), "node %d: %s", i, info);
        node_info(port, "replication", info, sizeof(info));
        if (strstr(info, "role:master") != NULL) {
            int replicas = -1;
            int slots = check_slots(out, port, &replicas);
            cr_assert_gt(slots, 5000, "master on %d has %d slots:\n%s", port, slots, out);
            cr_assert_eq(replicas, 1, "master on %d has %d replicas:\n%s", port, replicas, out);
            cr_assert_not_null(strstr(info, "connected_slaves:1"), "master on %d: %s", port, info);
            cr_assert_not_null(strstr(info, "state=online"), "master on %d: %s", port, info);
            cr_assert(it_cluster_is_master(i), "the harness thinks node %d is a replica", i);
            masters++;
            total += slots;
        } else {
            cr_assert_not_null(strstr(info, "role:slave"), "node %d: %s", i, info);
            cr_assert_not_null(strstr(info, "master_link_status:up"), "replica on %d: %s", port, info);
            cr_assert(!it_cluster_is_master(i), "the harness thinks node %d is a master", i);
        }
    }
    cr_assert_eq(masters, 3);
    cr_assert_eq(total, 16384);

    /* what the programs would get, and keys through -c */
    char url[512];
    it_redis_url(url, sizeof(url));
    cr_assert_eq(strncmp(url, "redis+cluster://127.0.0.1:", 26), 0, "%s", url);
    int commas = 0;
    for (const char *p = url; *p; p++)
        commas += *p == ',';
    cr_assert_eq(commas, 2, "the URL should name the 3 masters: %s", url);
    const char *keys[] = {"chatmi:{c:room:load}:seq", "chatmi:{u:c0}", "chatmi:{u:c1}", "chatmi:{q}:inbound"};
    for (size_t k = 0; k < 4; k++) {
        const char *set[] = {"SET", keys[k], "v", NULL};
        cr_assert_eq(it_redis_cli(it_redis_port(), set, out, sizeof(out)), 0, "%s", out);
        const char *get[] = {"GET", keys[k], NULL};
        cr_assert_eq(it_redis_cli(it_redis_port(), get, out, sizeof(out)), 0, "%s", out);
        cr_assert_eq(strncmp(out, "v", 1), 0, "GET %s through -c: %s", keys[k], out);
        /* the owner the harness names answers without a redirection */
        int owner = it_cluster_key_owner(keys[k]);
        cr_assert_eq(raw_cli(it_cluster_port(owner), get, out, sizeof(out)), 0, "%s", out);
        cr_assert_eq(strncmp(out, "v", 1), 0, "GET %s on node %d (the owner per the harness): %s", keys[k], owner,
                     out);
    }
    fprintf(stderr, "cluster: started and healthy in %ld ms\n", it_cluster_start_ms());
}

Test(cluster, kill_master_promotes_its_replica)
{
    it_cluster_start(3, 1);
    const char *key = "chatmi:{c:room:load}:seq";
    int victim = it_cluster_key_owner(key);
    int replica = -1;
    for (int i = 0; i < it_cluster_nodes(); i++)
        if (it_cluster_master_of(i) == victim)
            replica = i;
    cr_assert_geq(replica, 0, "node %d has no replica", victim);
    char out[8192];
    const char *set[] = {"SET", key, "41", NULL};
    cr_assert_eq(raw_cli(it_cluster_port(victim), set, out, sizeof(out)), 0, "%s", out);
    const char *wait[] = {"WAIT", "1", "5000", NULL};
    cr_assert_eq(raw_cli(it_cluster_port(victim), wait, out, sizeof(out)), 0, "%s", out);
    cr_assert_eq(atoi(out), 1, "WAIT: %s", out);

    int promoted = -1;
    long ms = it_cluster_kill_master(victim, &promoted);
    cr_assert_eq(promoted, replica, "node %d took over, not %d (the replica)", promoted, replica);
    cr_assert(!it_cluster_alive(victim));
    const char *role[] = {"ROLE", NULL};
    cr_assert_eq(raw_cli(it_cluster_port(replica), role, out, sizeof(out)), 0);
    cr_assert_eq(strncmp(out, "master", 6), 0, "ROLE of the promoted replica: %s", out);
    for (int i = 0; i < it_cluster_nodes(); i++) {
        if (!it_cluster_alive(i))
            continue;
        const char *ci[] = {"CLUSTER", "INFO", NULL};
        cr_assert_eq(raw_cli(it_cluster_port(i), ci, out, sizeof(out)), 0);
        cr_assert_not_null(strstr(out, "cluster_state:ok"), "node %d after the failover: %s", i, out);
    }
    const char *get[] = {"GET", key, NULL};
    cr_assert_eq(raw_cli(it_cluster_port(replica), get, out, sizeof(out)), 0);
    cr_assert_eq(strncmp(out, "41", 2), 0, "the replicated key on the promoted replica: %s", out);
    fprintf(stderr, "cluster: kill -9 of master node %d: replica node %d promoted, cluster ok after %ld ms\n",
            victim, replica, ms);

    /* the killed node comes back as a replica of its successor */
    it_cluster_restart_node(victim);
    cr_assert_eq(it_cluster_master_of(victim), replica, "the restarted node follows node %d",
                 it_cluster_master_of(victim));
    node_info(it_cluster_port(victim), "replication", out, sizeof(out));
    cr_assert_not_null(strstr(out, "role:slave"), "%s", out);
    cr_assert_not_null(strstr(out, "master_link_status:up"), "%s", out);
    static char chk[65536];
    cluster_check(it_cluster_port(replica), chk, sizeof(chk));

    /* the same shard fails over again (cluster_master_kill's second round
     * may hit it): the restarted node is promoted back, the key survives */
    int back = -1;
    long ms2 = it_cluster_kill_master(replica, &back);
    cr_assert_eq(back, victim, "node %d took over, not the restarted node %d", back, victim);
    cr_assert_eq(raw_cli(it_cluster_port(victim), get, out, sizeof(out)), 0);
    cr_assert_eq(strncmp(out, "41", 2), 0, "the key after the second failover: %s", out);
    cluster_check(it_cluster_port(victim), chk, sizeof(chk));
    fprintf(stderr, "cluster: second kill -9 of that shard's master: node %d promoted back after %ld ms\n", victim,
            ms2);
}

Test(cluster, reshard_and_move_slot_then_rebalance)
{
    it_cluster_start(3, 1);
    static char before[65536], after[65536];
    int m[8];
    cr_assert_eq(it_cluster_masters(m, 8), 3);
    int from = m[0], to = m[1];
    cluster_check(it_cluster_port(from), before, sizeof(before));
    int from0 = check_slots(before, it_cluster_port(from), NULL);
    int to0 = check_slots(before, it_cluster_port(to), NULL);
    cr_assert(from0 > 0 && to0 > 0, "%s", before);

    /* a key in a slot redis-cli will move: from's lowest slot */
    static int map[16384];
    it_cluster_slot_map(map);
    int lowest = -1;
    for (int s = 0; s < 16384 && lowest < 0; s++)
        if (map[s] == from)
            lowest = s;
    long t_reshard = it_cluster_reshard(from, to, 100);
    cluster_check(it_cluster_port(from), after, sizeof(after));
    cr_assert_eq(check_slots(after, it_cluster_port(from), NULL), from0 - 100, "%s", after);
    cr_assert_eq(check_slots(after, it_cluster_port(to), NULL), to0 + 100, "%s", after);
    cr_assert_eq(it_cluster_slot_owner(lowest), to, "slot %d (from's lowest) did not move", lowest);

    /* one chosen slot, with keys in it, moved to the third master */
    const char *room = "chatmi:{c:room:load}";
    int slot = it_cluster_keyslot(room);
    int owner = it_cluster_slot_owner(slot);
    int dest = m[0] == owner ? m[2] : m[0];
    char out[4096];
    const char *keys[] = {"chatmi:{c:room:load}:seq", "chatmi:{c:room:load}:members", NULL};
    const char *set[] = {"SET", keys[0], "7", NULL};
    cr_assert_eq(it_redis_cli(it_redis_port(), set, out, sizeof(out)), 0, "%s", out);
    const char *sadd[] = {"SADD", keys[1], "c0", "c1", NULL};
    cr_assert_eq(it_redis_cli(it_redis_port(), sadd, out, sizeof(out)), 0, "%s", out);
    long t_move = it_cluster_move_slot(slot, dest);
    const char *get[] = {"GET", keys[0], NULL};
    cr_assert_eq(raw_cli(it_cluster_port(dest), get, out, sizeof(out)), 0, "%s", out);
    cr_assert_eq(strncmp(out, "7", 1), 0, "GET on the slot's new owner (no redirection): %s", out);
    const char *card[] = {"SCARD", keys[1], NULL};
    cr_assert_eq(raw_cli(it_cluster_port(dest), card, out, sizeof(out)), 0, "%s", out);
    cr_assert_eq(atoi(out), 2, "SCARD on the slot's new owner: %s", out);
    cr_assert_eq(raw_cli(it_cluster_port(owner), get, out, sizeof(out)), 0, "%s", out);
    cr_assert_not_null(strstr(out, "MOVED"), "the old owner still answers for slot %d: %s", slot, out);

    long t_rebalance = it_cluster_rebalance();
    static char bal[65536];
    cluster_check(it_cluster_port(from), bal, sizeof(bal));
    for (int i = 0; i < 3; i++) {
        int s = check_slots(bal, it_cluster_port(m[i]), NULL);
        cr_assert(s >= 5455 && s <= 5467, "master node %d has %d slots after the rebalance:\n%s", m[i], s, bal);
    }
    fprintf(stderr, "cluster: reshard of 100 slots %ld ms, one slot with keys moved in %ld ms, rebalance %ld ms\n",
            t_reshard, t_move, t_rebalance);
}
