#!/usr/bin/python3
"""deploycheck.py: consistency checks of docker/, ecs/ and systemd/ against the
programs' real options, ports and endpoints (tests/deploy/check-*.sh run it).

  deploycheck.py options   every CHATMI_* name and --flag in the deployment files
                           and docs/deploy-*.md is an option of the program that
                           reads it, as its --help lists them
  deploycheck.py ecs       the task definitions through botocore's ParamValidator
                           for RegisterTaskDefinition, Fargate's rules, and the
                           CloudFormation template's cross-references
  deploycheck.py docker    the Dockerfile, compose file and haproxy.cfg against
                           each other, the programs and this Debian's packages
  deploycheck.py syscalls  every system call the programs make (under strace,
                           serving real traffic, reloading, stopping) is allowed
                           by the units' SystemCallFilter= (systemd-analyze's sets)

Each prints what it checked and ends with "N passed, 0 failed", or exits 1 at the
first failure with the reason. Environment: TOP_SRCDIR, CHATMI_GATEWAY_BIN,
CHATMI_WORKER_BIN (tests/deploy/Makefile.am sets them).
"""
import glob
import json
import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True  # the source tree may be read-only (distcheck)

SRC = os.environ.get("TOP_SRCDIR") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
SRC = os.path.abspath(SRC)
GATEWAY = os.environ.get("CHATMI_GATEWAY_BIN", "")
WORKER = os.environ.get("CHATMI_WORKER_BIN", "")

# CHATMI_* names in the deployment files that are not program options, and why.
NOT_OPTIONS = {
    "CHATMI_LB_BIND": "HAProxy's listen address (docker/haproxy.cfg)",
    "CHATMI_GW1": "HAProxy's first gateway (docker/haproxy.cfg)",
    "CHATMI_GW2": "HAProxy's second gateway (docker/haproxy.cfg)",
    "CHATMI_PORT": "the compose stack's published port",
    "CHATMI_DEPLOY_CHECKS_REQUIRED": "these checks' own switch",
    "CHATMI_NAME": "the placeholder of 'CHATMI_NAME=value' in comments",
}
# Libraries every Debian image has (essential packages depend on them).
DEBIAN_BASE = {"libc6", "libgcc-s1", "libzstd1", "zlib1g"}


class Checks:
    def __init__(self, name):
        self.name, self.passed = name, 0

    def ok(self, what):
        self.passed += 1
        print(f"{self.name}: ok: {what}")

    def fail(self, what):
        print(f"{self.name}: FAIL: {what}", file=sys.stderr)
        print(f"{self.passed} passed, 1 failed")
        sys.exit(1)

    def expect(self, cond, what, why=""):
        if cond:
            self.ok(what)
        else:
            self.fail(what + (f": {why}" if why else ""))

    def done(self):
        print(f"{self.passed} passed, 0 failed")


def read(rel):
    with open(os.path.join(SRC, rel), encoding="utf-8") as f:
        return f.read()


# ---- the programs' options --------------------------------------------------------------

def program_options(binary):
    """{flag: env} from `binary --help`."""
    out = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30, check=True).stdout
    opts, flag = {}, None
    for line in out.splitlines():
        m = re.match(r"^  --([a-z][a-z0-9-]*)", line)
        if m:
            flag = m.group(1)
            opts[flag] = None
            continue
        m = re.search(r"env: (CHATMI_[A-Z0-9_]+)", line)
        if m and flag:
            opts[flag] = m.group(1)
    if "help" not in opts or len(opts) < 5:
        raise SystemExit(f"{binary} --help lists no options: {out[:200]!r}")
    return opts


def help_default(binary, flag):
    out = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30, check=True).stdout
    m = re.search(r"--" + re.escape(flag) + r"\b[^\n]*\n[^\n]*\n\s+default: (\S+)", out)
    return m.group(1) if m else None


def options_by_program():
    if not (GATEWAY and WORKER):
        raise SystemExit("CHATMI_GATEWAY_BIN and CHATMI_WORKER_BIN must name the built programs")
    return {"chatmi-gateway": program_options(GATEWAY), "chatmi-worker": program_options(WORKER)}


# ---- CloudFormation --------------------------------------------------------------------------

def cfn_module():
    sys.path.insert(0, os.path.join(SRC, "ecs"))
    import importlib.util
    spec = importlib.util.spec_from_file_location("render_taskdefs", os.path.join(SRC, "ecs", "render-taskdefs.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def walk(v):
    yield v
    if isinstance(v, dict):
        for x in v.values():
            yield from walk(x)
    elif isinstance(v, list):
        for x in v:
            yield from walk(x)
    elif hasattr(v, "value"):
        yield from walk(v.value)


def env_names(container):
    names = {e["Name"]: e.get("Value") for e in container.get("Environment", [])}
    names.update({s["Name"]: s.get("ValueFrom") for s in container.get("Secrets", [])})
    return names


# ---- options ----------------------------------------------------------------------------------

def check_options():
    c = Checks("options")
    progs = options_by_program()
    envs = {p: {e for e in o.values() if e} for p, o in progs.items()}
    flags = {p: set(o) for p, o in progs.items()}
    all_envs = envs["chatmi-gateway"] | envs["chatmi-worker"]

    def names_ok(names, allowed, where):
        bad = sorted(n for n in names if n not in allowed and n not in NOT_OPTIONS)
        c.expect(not bad, f"{where}: {len(names)} CHATMI_* names are options",
                 "not an option: " + ", ".join(bad))

    # Files read by one program.
    for rel, prog in [("systemd/gateway.env", "chatmi-gateway"), ("systemd/worker.env", "chatmi-worker")]:
        names = set(re.findall(r"^#?\s*(CHATMI_[A-Z0-9_]+)=", read(rel), re.M))
        c.expect(names, f"{rel} names options")
        names_ok(names, envs[prog], rel)

    # The ECS task definitions, container by container.
    mod = cfn_module()
    t = mod.load()
    for res, prog in [("GatewayTaskDefinition", "chatmi-gateway"), ("WorkerTaskDefinition", "chatmi-worker")]:
        for cont in t["Resources"][res]["Properties"]["ContainerDefinitions"]:
            names_ok(set(env_names(cont)), envs[prog], f"ecs/chatmi.yaml {res}")
    for rel in glob.glob(os.path.join(SRC, "ecs", "*-taskdef.json")):
        td = json.load(open(rel, encoding="utf-8"))
        for cont in td["containerDefinitions"]:
            prog = cont["command"][0]
            names = {e["name"] for e in cont.get("environment", []) + cont.get("secrets", [])}
            names_ok(names, envs[prog], os.path.relpath(rel, SRC))

    # The compose stack, service by service.
    import yaml
    for rel in ["docker/docker-compose.yml", "docker/docker-compose.jwt.yml"]:
        doc = yaml.safe_load(read(rel))
        base = yaml.safe_load(read("docker/docker-compose.yml"))["services"]
        for name, svc in doc["services"].items():
            cmd = (svc.get("command") or base.get(name, {}).get("command") or [""])[0]
            env = svc.get("environment") or {}
            names = {k for k in env if k.startswith("CHATMI_")}
            allowed = envs.get(cmd, set())
            names_ok(names, allowed if cmd in envs else set(NOT_OPTIONS), f"{rel} service {name}")

    # Unit command lines.
    for rel in ["systemd/chatmi-gateway.service.in", "systemd/chatmi-worker@.service.in"]:
        for line in read(rel).splitlines():
            m = re.match(r"^ExecStart=\S*/(chatmi-\w+)(.*)$", line)
            if m:
                used = set(re.findall(r"--([a-z][a-z0-9-]*)", m.group(2)))
                bad = sorted(used - flags[m.group(1)])
                c.expect(not bad, f"{rel}: ExecStart flags {sorted(used)} are options", f"unknown: {bad}")

    # Every file: any CHATMI_ name is an option of one of the programs, and
    # "chatmi-xxx --flag" on a line uses that program's flags.
    files = (glob.glob(os.path.join(SRC, "docker", "**", "*"), recursive=True)
             + glob.glob(os.path.join(SRC, "ecs", "*")) + glob.glob(os.path.join(SRC, "systemd", "*"))
             + glob.glob(os.path.join(SRC, "docs", "deploy-*.md")))
    nfiles = 0
    for path in sorted(files):
        if not os.path.isfile(path) or path.endswith((".pyc",)):
            continue
        text = open(path, encoding="utf-8", errors="replace").read()
        rel = os.path.relpath(path, SRC)
        nfiles += 1
        names = set(re.findall(r"\b(CHATMI_[A-Z][A-Z0-9_]*[A-Z0-9])\b", text))
        bad = sorted(n for n in names if n not in all_envs and n not in NOT_OPTIONS)
        if bad:
            c.fail(f"{rel}: not an option of either program: {', '.join(bad)}")
        for line in text.splitlines():
            for m in re.finditer(r"\b(chatmi-gateway|chatmi-worker)((?:\s+(?:--[a-z][a-z0-9-]*(?:=\S*)?|[^\s-]\S*))+)",
                                 line):
                used = set(re.findall(r"(?<![\w-])--([a-z][a-z0-9-]*)", m.group(2)))
                bad = sorted(used - flags[m.group(1)])
                if bad:
                    c.fail(f"{rel}: `{m.group(0).strip()}`: not options of {m.group(1)}: {bad}")
    c.ok(f"{nfiles} files in docker/, ecs/, systemd/ and docs/deploy-*.md name only real options")
    c.done()


# ---- ECS ---------------------------------------------------------------------------------------

# Fargate task sizes: cpu -> allowed memory (MiB).
FARGATE = {
    256: [512, 1024, 2048],
    512: list(range(1024, 4097, 1024)),
    1024: list(range(2048, 8193, 1024)),
    2048: list(range(4096, 16385, 1024)),
    4096: list(range(8192, 30721, 1024)),
    8192: list(range(16384, 61441, 4096)),
    16384: list(range(32768, 122881, 8192)),
}
FARGATE_LOG_DRIVERS = {"awslogs", "splunk", "awsfirelens"}


def fargate_rules(c, td, where):
    cpu, mem = int(td["cpu"]), int(td["memory"])
    c.expect(mem in FARGATE.get(cpu, []), f"{where}: cpu {cpu} / memory {mem} is a Fargate size")
    c.expect(td.get("networkMode") == "awsvpc", f"{where}: networkMode awsvpc")
    c.expect(td.get("requiresCompatibilities") == ["FARGATE"], f"{where}: requires FARGATE")
    for cont in td["containerDefinitions"]:
        st = cont.get("stopTimeout")
        c.expect(st is not None and 2 <= st <= 120, f"{where}/{cont['name']}: stopTimeout {st} within Fargate's 2..120")
        for pm in cont.get("portMappings", []):
            c.expect(pm.get("hostPort", pm["containerPort"]) == pm["containerPort"],
                     f"{where}/{cont['name']}: awsvpc hostPort equals containerPort")
        nofile = [u for u in cont.get("ulimits", []) if u["name"] == "nofile"]
        c.expect(nofile and nofile[0]["softLimit"] <= nofile[0]["hardLimit"] <= 1048576,
                 f"{where}/{cont['name']}: nofile ulimit raised, within Fargate's 1048576")
        c.expect(not cont.get("privileged") and not cont.get("linuxParameters", {}).get("devices"),
                 f"{where}/{cont['name']}: nothing Fargate refuses (privileged, devices)")
        c.expect(cont["logConfiguration"]["logDriver"] in FARGATE_LOG_DRIVERS,
                 f"{where}/{cont['name']}: log driver supported on Fargate")


def check_ecs():
    c = Checks("ecs")
    import botocore.session
    from botocore.validate import ParamValidator

    mod = cfn_module()
    t = mod.load()
    res, params, maps = t["Resources"], t["Parameters"], t.get("Mappings", {})
    conds = t.get("Conditions", {})

    # ---- the template's own references
    for node in walk(t):
        i = mod.intrinsic(node)
        if i is None:
            continue
        name, arg = i
        if name == "Ref":
            if arg not in params and arg not in res and arg not in mod.PSEUDO:
                c.fail(f"Ref {arg}: no such parameter or resource")
        elif name == "GetAtt":
            target = arg.split(".")[0] if isinstance(arg, str) else arg[0]
            if target not in res:
                c.fail(f"GetAtt {arg}: no such resource")
        elif name == "Sub":
            text = arg if isinstance(arg, str) else arg[0]
            for v in re.findall(r"\$\{([^}!]+)\}", text):
                base = v.split(".")[0]
                if base not in params and base not in res and v not in mod.PSEUDO:
                    c.fail(f"Sub ${{{v}}}: no such parameter or resource")
        elif name == "FindInMap":
            if isinstance(arg[0], str) and arg[0] not in maps:
                c.fail(f"FindInMap {arg[0]}: no such mapping")
        elif name == "If" or name == "Condition":
            cname = arg[0] if name == "If" else arg
            if cname not in conds:
                c.fail(f"{name} {cname}: no such condition")
    c.ok("every Ref, GetAtt, Sub, FindInMap and condition resolves")
    used = {mod.intrinsic(n)[1] for n in walk(t) if mod.intrinsic(n) and mod.intrinsic(n)[0] == "Ref"}
    used |= {v.split(".")[0] for n in walk(t) if mod.intrinsic(n) and mod.intrinsic(n)[0] == "Sub"
             for v in re.findall(r"\$\{([^}!]+)\}", mod.intrinsic(n)[1] if isinstance(mod.intrinsic(n)[1], str)
                                 else mod.intrinsic(n)[1][0])}
    unused = sorted(set(params) - used)
    c.expect(not unused, "every parameter is used", f"unused: {unused}")
    for name, r in res.items():
        deps = r.get("DependsOn", [])
        for d in [deps] if isinstance(deps, str) else deps:
            c.expect(d in res and "Condition" not in res[d],
                     f"{name} DependsOn {d}: exists and is always created")
        for k in ("Condition",):
            if k in r and r[k] not in conds:
                c.fail(f"{name}: condition {r[k]} does not exist")

    # ---- task definitions: rendered files up to date, the ECS API model, Fargate
    rendered = mod.render(t)
    for filename, text in rendered.items():
        path = os.path.join(SRC, "ecs", filename)
        c.expect(os.path.exists(path) and open(path, encoding="utf-8").read() == text,
                 f"ecs/{filename} is rendered from ecs/chatmi.yaml", "run ecs/render-taskdefs.py")
    op = botocore.session.get_session().get_service_model("ecs").operation_model("RegisterTaskDefinition")
    for filename, text in rendered.items():
        td = json.loads(text)
        report = ParamValidator().validate(td, op.input_shape)
        c.expect(not report.has_errors(), f"ecs/{filename}: valid RegisterTaskDefinition input "
                 f"(botocore {botocore.__version__} ECS model)", report.generate_report())
        fargate_rules(c, td, f"ecs/{filename}")
    # every allowed size pair a user is likely to pick must be valid: the defaults
    for cpu_p, mem_p in [("GatewayCpu", "GatewayMemory"), ("WorkerCpu", "WorkerMemory")]:
        cpu, mem = int(params[cpu_p]["Default"]), int(params[mem_p]["Default"])
        c.expect(mem in FARGATE.get(cpu, []), f"defaults {cpu_p}={cpu} {mem_p}={mem} are a Fargate size")

    # ---- the drain, the stop timeout and the deregistration delay
    timings = maps["DrainTimings"]
    allowed = params["DrainSeconds"]["AllowedValues"]
    c.expect(sorted(allowed) == sorted(timings), "DrainTimings has a row for every DrainSeconds value")
    for d in allowed:
        st, dd = timings[d]["StopTimeout"], timings[d]["DeregistrationDelay"]
        drain = int(d)
        c.expect(drain + 15 <= st <= 120, f"drain {drain}: stopTimeout {st} >= drain + 15 (children killed at "
                 "drain + 10) and <= 120")
        c.expect(dd >= drain + 10, f"drain {drain}: deregistration delay {dd} >= drain + 10")

    gw = res["GatewayTaskDefinition"]["Properties"]["ContainerDefinitions"][0]
    wk = res["WorkerTaskDefinition"]["Properties"]["ContainerDefinitions"][0]
    genv, wenv = env_names(gw), env_names(wk)

    def is_ref(v, name):
        i = mod.intrinsic(v)
        return i is not None and i[0] == "Ref" and i[1] == name

    def find_in_drain(v, key):
        i = mod.intrinsic(v)
        return (i is not None and i[0] == "FindInMap" and i[1][0] == "DrainTimings"
                and is_ref(i[1][1], "DrainSeconds") and i[1][2] == key)

    c.expect(is_ref(genv.get("CHATMI_DRAIN_SECONDS"), "DrainSeconds"), "gateway CHATMI_DRAIN_SECONDS is DrainSeconds")
    c.expect(find_in_drain(gw.get("StopTimeout"), "StopTimeout"), "gateway stopTimeout follows DrainSeconds")
    tg = res["GatewayTargetGroup"]["Properties"]
    dereg = [a["Value"] for a in tg["TargetGroupAttributes"] if a["Key"] == "deregistration_delay.timeout_seconds"]
    c.expect(dereg and find_in_drain(dereg[0], "DeregistrationDelay"),
             "target group deregistration delay follows DrainSeconds")

    # ---- ports and health checks
    port = gw["PortMappings"][0]["ContainerPort"]
    listen_port = int(genv["CHATMI_LISTEN"].rsplit(":", 1)[1])
    svc = res["GatewayService"]["Properties"]["LoadBalancers"][0]
    c.expect(port == listen_port == tg["Port"] == svc["ContainerPort"],
             f"gateway port {port}: container, CHATMI_LISTEN, target group and service agree")
    c.expect(svc["ContainerName"] == gw["Name"], "the service's load balancer names the gateway container")
    c.expect(tg["HealthCheckPath"] == "/readyz" and tg.get("HealthCheckPort", "traffic-port") == "traffic-port",
             "target group health check: GET /readyz on the traffic port")
    ingress = res["GatewaySecurityGroup"]["Properties"]["SecurityGroupIngress"]
    c.expect(all(r["FromPort"] == port == r["ToPort"] for r in ingress), "gateway security group opens the port")
    hc = gw["HealthCheck"]["Command"]
    dockerfile = read("docker/Dockerfile")
    c.expect(hc[0] == "CMD" and re.search(r"install .*docker/chatmi-healthcheck /out" + re.escape(hc[1]) + r"\b",
                                          dockerfile),
             f"container health check {hc[1]} is installed by docker/Dockerfile")
    c.expect('path=${1:-/healthz}' in read("docker/chatmi-healthcheck"),
             "the container health check is liveness: GET /healthz")
    heartbeat = float(help_default(GATEWAY, "heartbeat") or 25)
    lb_attrs = {a["Key"]: a["Value"] for a in res["LoadBalancer"]["Properties"]["LoadBalancerAttributes"]}
    idle = int(lb_attrs["idle_timeout.timeout_seconds"])
    c.expect(idle >= 2 * heartbeat and idle <= 4000,
             f"ALB idle timeout {idle} s outlasts two gateway heartbeats ({heartbeat:g} s) and ALB's 4000 s cap")
    # ---- Redis: one replication group (RedisShards 0) or cluster mode enabled (RedisShards > 0)
    rg_model = botocore.session.get_session().get_service_model("elasticache").operation_model(
        "CreateReplicationGroup").input_shape.members
    for name, cond, pgname in [("Redis", "RedisSingle", "RedisParameters"),
                               ("RedisCluster", "RedisClusterMode", "RedisClusterParameters")]:
        rg = res[name]["Properties"]
        c.expect(res[name].get("Condition") == cond and res[pgname].get("Condition") == cond,
                 f"{name} and {pgname} exist under condition {cond}")
        unknown = sorted(set(rg) - set(rg_model))
        c.expect(not unknown, f"{name}: every property is a CreateReplicationGroup parameter "
                 f"(botocore {botocore.__version__} ElastiCache model)", f"unknown: {unknown}")
        c.expect(all(r["FromPort"] == rg["Port"] for r in res["RedisSecurityGroup"]["Properties"]["SecurityGroupIngress"]),
                 f"{name}: the Redis security group opens its port")
        c.expect(rg["AutomaticFailoverEnabled"] is True and rg["MultiAZEnabled"] is True and rg["AtRestEncryptionEnabled"],
                 f"{name}: Multi-AZ, automatic failover, encryption at rest")
        c.expect(is_ref(rg["CacheParameterGroupName"], pgname), f"{name} uses {pgname}")
        pg = res[pgname]["Properties"]["Properties"]
        c.expect(pg.get("maxmemory-policy") == "noeviction", f"{pgname}: maxmemory-policy noeviction")
    rc = res["RedisCluster"]["Properties"]
    c.expect(rc.get("ClusterMode", "enabled") == "enabled" and is_ref(rc.get("NumNodeGroups"), "RedisShards")
             and res["RedisClusterParameters"]["Properties"]["Properties"].get("cluster-enabled") == "yes"
             and "NumCacheClusters" not in rc,
             "RedisCluster: cluster mode enabled, RedisShards shards, cluster-enabled parameter group")
    nodes = params["RedisNodes"]
    reps = maps["ReplicasOfNodes"]
    c.expect(all(str(n) in reps and reps[str(n)]["Replicas"] == n - 1
                 for n in range(int(nodes["MinValue"]), int(nodes["MaxValue"]) + 1)),
             "ReplicasOfNodes maps every allowed RedisNodes to RedisNodes - 1 replicas per shard")
    cond = conds["RedisClusterMode"]
    c.expect(mod.intrinsic(cond)[0] == "Not" and "RedisShards" in json.dumps(cond, default=str),
             "cluster mode is chosen by RedisShards")
    url = mod.intrinsic(res["RedisUrlSecret"]["Properties"]["SecretString"])
    branches = [mod.intrinsic(b)[1] for b in url[1][1:]] if url and url[0] == "If" else []
    c.expect(url and url[1][0] == "RedisClusterMode" and len(branches) == 2
             and branches[0].startswith("redis+cluster://${RedisCluster.ConfigurationEndPoint.Address}")
             and branches[1].startswith("redis://${Redis.PrimaryEndPoint.Address}"),
             "the Redis URL: redis+cluster:// on the configuration endpoint, or redis:// on the primary endpoint")
    for cont in (gw, wk):
        c.expect(is_ref(env_names(cont).get("CHATMI_QUEUE_PARTITIONS"), "QueuePartitions"),
                 f"{cont['Name']}: CHATMI_QUEUE_PARTITIONS is QueuePartitions (gateways and workers agree)")

    # ---- image, programs, logs, secrets
    bins = set(re.findall(r"\b(chatmi-\w+)\b", read("gateway/Makefile.am") + read("worker/Makefile.am")))
    for cont, prog in [(gw, "chatmi-gateway"), (wk, "chatmi-worker")]:
        c.expect(is_ref(cont["Image"], "Image"), f"{cont['Name']}: image is the Image parameter")
        c.expect(cont["Command"] == [prog] and prog in bins, f"{cont['Name']}: runs {prog}, a program of the build")
        opts = cont["LogConfiguration"]["Options"]
        group = mod.intrinsic(opts["awslogs-group"])
        c.expect(group and group[0] == "Ref" and res[group[1]]["Type"] == "AWS::Logs::LogGroup",
                 f"{cont['Name']}: awslogs group is a log group of the stack")
        c.expect(is_ref(opts["awslogs-region"], "AWS::Region"), f"{cont['Name']}: awslogs region is the stack's")
        c.expect(env_names(cont).get("CHATMI_LOG_FORMAT") == "json", f"{cont['Name']}: JSON logs")
        c.expect(cont.get("ReadonlyRootFilesystem") is True, f"{cont['Name']}: read-only root file system")
    c.expect(mod.intrinsic(gw["LogConfiguration"]["Options"]["awslogs-group"])[1]
             != mod.intrinsic(wk["LogConfiguration"]["Options"]["awslogs-group"])[1], "separate log groups")
    policy_res = res["TaskExecutionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][0]["Resource"]
    granted = {mod.intrinsic(r)[1] for r in policy_res}
    for cont in (gw, wk):
        for s in cont.get("Secrets", []):
            ref = mod.intrinsic(s["ValueFrom"])
            c.expect(ref and ref[0] == "Ref" and res[ref[1]]["Type"] == "AWS::SecretsManager::Secret"
                     and ref[1] in granted,
                     f"{cont['Name']}: secret {s['Name']} comes from Secrets Manager, readable by the execution role")
    c.expect("CHATMI_JWT_SECRET" in genv and "CHATMI_REDIS_URL" in genv and "CHATMI_REDIS_URL" in wenv,
             "JWT key and Redis URL come from secrets")

    # ---- worker metrics and autoscaling
    emf_names = set(re.findall(r'\{\\"Name\\":\\"(\w+)\\"', read("worker/emf.c")))
    pol = res["WorkerBacklogScaling"]["Properties"]["TargetTrackingScalingPolicyConfiguration"]
    spec = pol["CustomizedMetricSpecification"]
    c.expect(wenv.get("CHATMI_EMF") == "true", "workers write EMF metrics")
    c.expect(mod.intrinsic(wenv["CHATMI_EMF_NAMESPACE"])[1] == mod.intrinsic(spec["Namespace"])[1],
             "worker scaling reads the namespace the workers write")
    c.expect(spec["MetricName"] in emf_names, f"worker scaling metric {spec['MetricName']} is one the worker writes "
             f"({', '.join(sorted(emf_names))})")
    gpol = res["GatewayConnectionScaling"]["Properties"]["TargetTrackingScalingPolicyConfiguration"]
    metrics = {m["MetricStat"]["Metric"]["MetricName"] for m in gpol["CustomizedMetricSpecification"]["Metrics"]
               if "MetricStat" in m}
    c.expect({"ActiveConnectionCount", "HealthyHostCount"} <= metrics, "gateway scaling on connections per task")
    for name in ("GatewayCpuScaling", "GatewayConnectionScaling"):
        cfg = res[name]["Properties"]["TargetTrackingScalingPolicyConfiguration"]
        c.expect(cfg["ScaleInCooldown"] >= 600, f"{name}: slow scale-in (it drops that task's WebSockets)")
    c.done()


# ---- docker ----------------------------------------------------------------------------------

def deb_packages_of(binaries):
    """Debian packages of the shared libraries the binaries load (this machine's)."""
    out = subprocess.run(["ldd"] + binaries, capture_output=True, text=True, check=True).stdout
    libs = sorted(set(re.findall(r"=> (/\S+)", out)))
    pkgs = set()
    for lib in libs:
        real = os.path.realpath(lib)
        for cand in (lib, real, real.replace("/usr/lib/", "/lib/", 1), lib.replace("/lib/", "/usr/lib/", 1)):
            r = subprocess.run(["dpkg", "-S", cand], capture_output=True, text=True)
            if r.returncode == 0:
                pkgs.add(r.stdout.split(":")[0].strip())
                break
        else:
            raise SystemExit(f"no Debian package owns {lib}")
    return pkgs


def apt_lists(dockerfile):
    """Package lists of each `apt-get install` in the Dockerfile, by stage."""
    stages, cur = [], None
    text = dockerfile.replace("\\\n", " ")
    for line in text.splitlines():
        if line.startswith("FROM "):
            cur = []
            stages.append(cur)
        m = re.search(r"apt-get install [^&]*", line)
        if m and cur is not None:
            cur.extend(w for w in m.group(0).split()[2:] if not w.startswith("-"))
    return stages


def check_docker():
    c = Checks("docker")
    import yaml
    dockerfile = read("docker/Dockerfile")
    stages = apt_lists(dockerfile)
    c.expect(len(stages) == 2, "two stages: build and runtime")
    build_pkgs, run_pkgs = set(stages[0]), set(stages[1])

    deps = read("scripts/install-deps.sh")
    declared = set(re.findall(r"^\s+([a-z0-9][a-z0-9.+-]+(?:\s+[a-z0-9][a-z0-9.+-]+)*)\s*$",
                              deps.split("PACKAGES=(")[1].split(")")[0], re.M))
    declared = {w for line in declared for w in line.split()}
    missing = sorted(build_pkgs - declared)
    c.expect(not missing, "the build stage installs only packages CI installs too (scripts/install-deps.sh)",
             f"not in install-deps.sh: {missing}")

    # every program `make install` puts in the image (chatmi-bench too, when built)
    progs = [GATEWAY, WORKER]
    bench = os.path.join(os.environ.get("TOP_BUILDDIR", ""), "bench", "chatmi-bench")
    if os.path.exists(bench):
        progs.append(bench)
    need = deb_packages_of(progs)
    if os.environ.get("CHATMI_SANITIZER_BUILD") == "1":
        # --enable-sanitizers adds its runtimes; the image is a plain build
        # (libasan pulls in libstdc++, which the plain programs never load)
        need = {p for p in need if not re.match(r"lib(asan|ubsan|lsan|tsan)\d|libstdc\+\+\d", p)}
    base = need & DEBIAN_BASE
    missing = sorted(need - base - run_pkgs)
    c.expect(not missing, f"the runtime stage installs every library {len(progs)} programs load "
             f"({', '.join(sorted(need - base))})",
             f"missing: {missing}")
    extra = sorted(run_pkgs - need - {"tini"})
    c.expect(not extra, "the runtime stage installs nothing else but tini", f"extra: {extra}")
    dev = sorted(p for p in run_pkgs if p.endswith("-dev"))
    c.expect(not dev, "no -dev package in the runtime stage", str(dev))

    c.expect(re.search(r"^USER (\d+)(:\d+)?$", dockerfile, re.M) and not re.search(r"^USER 0", dockerfile, re.M),
             "runs as a numeric non-root user")
    c.expect(re.search(r"^STOPSIGNAL SIGTERM$", dockerfile, re.M), "STOPSIGNAL SIGTERM")
    c.expect('ENTRYPOINT ["/usr/bin/tini", "--"]' in dockerfile, "tini is PID 1 (reaps, forwards signals)")
    expose = re.search(r"^EXPOSE (\d+)$", dockerfile, re.M)
    listen = re.search(r"CHATMI_LISTEN=[\d.]+:(\d+)", dockerfile)
    c.expect(expose and listen and expose.group(1) == listen.group(1), "EXPOSE is the image's CHATMI_LISTEN port")
    port = int(expose.group(1))
    c.expect(re.search(r'^HEALTHCHECK .*\n?.*CMD \["/usr/bin/chatmi-healthcheck"\]', dockerfile, re.M),
             "HEALTHCHECK runs chatmi-healthcheck")
    c.expect(re.search(r'^CMD \["chatmi-gateway"\]$', dockerfile, re.M), "the default command is the gateway")
    for src in re.findall(r"^COPY (?!--from)(\S+)", dockerfile, re.M):
        c.expect(os.path.exists(os.path.join(SRC, src)), f"COPY {src} exists in the build context")
    ignore = read(".dockerignore").split()
    c.expect(".git" in ignore and "build*" in ignore, ".dockerignore keeps .git and build trees out")

    compose = yaml.safe_load(read("docker/docker-compose.yml"))
    svcs = compose["services"]
    gws = [n for n, s in svcs.items() if s.get("command") == ["chatmi-gateway"]]
    wks = [n for n, s in svcs.items() if s.get("command") == ["chatmi-worker"]]
    c.expect(len(gws) == 2 and len(wks) == 2, f"compose: two gateways ({gws}) and two workers ({wks})")

    def seconds(v):
        m = re.fullmatch(r"(\d+)s", str(v))
        return int(m.group(1)) if m else int(v)

    for n in gws:
        env = svcs[n]["environment"]
        c.expect(int(env["CHATMI_LISTEN"].rsplit(":", 1)[1]) == port, f"compose {n}: listens on the image's port")
        drain = int(env["CHATMI_DRAIN_SECONDS"])
        c.expect(seconds(svcs[n]["stop_grace_period"]) >= drain + 15,
                 f"compose {n}: stop_grace_period >= CHATMI_DRAIN_SECONDS + 15")
        c.expect(svcs[n]["depends_on"]["redis"]["condition"] == "service_healthy", f"compose {n}: waits for Redis")
    for n in wks:
        c.expect(svcs[n]["environment"].get("CHATMI_EMF") == "true", f"compose {n}: EMF metrics on")
    lb = svcs["lb"]
    targets = sorted(v for k, v in lb["environment"].items() if k.startswith("CHATMI_GW"))
    c.expect(targets == sorted(f"{n}:{port}" for n in gws), "HAProxy's servers are the two gateway services")
    c.expect(lb["image"] == "haproxy:" + subprocess.run(["haproxy", "-v"], capture_output=True, text=True)
             .stdout.split()[2].rsplit(".", 1)[0],
             "the compose HAProxy is the version this test runs (" + lb["image"] + ")")
    redis_cmd = " ".join(svcs["redis"]["command"])
    c.expect("--appendonly yes" in redis_cmd and "--maxmemory-policy noeviction" in redis_cmd,
             "compose Redis: AOF on, noeviction")
    cfg = read("docker/haproxy.cfg")
    c.expect("http-check send meth GET uri /readyz" in cfg and "http-check expect status 200" in cfg,
             "HAProxy health check: GET /readyz, 200")
    c.expect(re.search(r"timeout tunnel\s+\d+h", cfg) and "balance leastconn" in cfg,
             "HAProxy: WebSocket tunnel timeout, leastconn")
    c.expect(not re.search(r"^\s*[^#\s][^#\n]*shutdown-sessions", cfg, re.M),
             "HAProxy lets a draining gateway close its own sessions")
    c.done()


# ---- system calls ------------------------------------------------------------------------

def syscall_set(name, cache={}):
    """The calls of a systemd-analyze syscall-filter group (nested groups expanded)."""
    if not name.startswith("@"):
        return {name}
    if name not in cache:
        out = subprocess.run(["systemd-analyze", "syscall-filter", name], capture_output=True, text=True,
                             check=True).stdout
        calls = set()
        for line in out.splitlines()[1:]:
            w = line.strip()
            if not w or w.startswith("#"):
                continue
            calls |= syscall_set(w)
        cache[name] = calls
    return cache[name]


def unit_filter(rel):
    """Allowed calls of a unit's SystemCallFilter= lines (allow list, then ~ deny lists)."""
    allowed = None
    for line in read(rel).splitlines():
        m = re.match(r"^SystemCallFilter=(~?)(.*)$", line)
        if not m:
            continue
        names = set()
        for w in m.group(2).split():
            names |= syscall_set(w)
        if m.group(1):
            allowed = (allowed if allowed is not None else set()) - names
        else:
            allowed = (allowed or set()) | names
    return allowed


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout, what):
    import time
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.1)
    raise SystemExit(f"syscalls: timed out waiting for {what}")


def traced_child(p):
    """pid of the program strace (p) runs: signals go to it, not to strace."""
    path = f"/proc/{p.pid}/task/{p.pid}/children"
    wait_for(lambda: open(path).read().split(), 10, "strace's child")
    return int(open(path).read().split()[0])


def check_syscalls():
    import asyncio
    import shutil
    import signal
    import tempfile
    import time
    import urllib.request

    c = Checks("syscalls")
    gw_allowed = unit_filter("systemd/chatmi-gateway.service.in")
    wk_allowed = unit_filter("systemd/chatmi-worker@.service.in")
    c.expect(gw_allowed and wk_allowed, f"unit filters: {len(gw_allowed)} calls allowed for the gateway, "
             f"{len(wk_allowed)} for the worker")
    tmp = tempfile.mkdtemp(prefix="chatmi-syscalls.")
    procs = []

    def start(argv, log):
        f = open(os.path.join(tmp, log), "w")
        p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env={k: v for k, v in os.environ.items() if not k.startswith("CHATMI_")})
        procs.append(p)
        return p

    try:
        rport, gport, mport = free_port(), free_port(), free_port()
        redis = start([os.environ.get("REDIS_SERVER", "redis-server"), "--port", str(rport), "--bind", "127.0.0.1",
                       "--save", "", "--appendonly", "no", "--dir", tmp], "redis.log")
        wait_for(lambda: "Ready to accept" in open(os.path.join(tmp, "redis.log")).read(), 10, "redis-server")
        url = f"redis://127.0.0.1:{rport}/0"
        strace = ["strace", "-f", "-qq"]
        gw = start(strace + ["-o", os.path.join(tmp, "gw.strace"), GATEWAY, "--listen", f"127.0.0.1:{gport}",
                             "--processes", "2", "--auth", "none", "--redis-url", url, "--drain-seconds", "1",
                             "--log-format", "json"], "gateway.log")
        wk = start(strace + ["-o", os.path.join(tmp, "wk.strace"), WORKER, "--redis-url", url, "--emf",
                             "--emf-interval", "1", "--heartbeat", "0.5", "--log-format", "json",
                             "--metrics-listen", f"127.0.0.1:{mport}"], "worker.log")

        def ready():
            try:
                return urllib.request.urlopen(f"http://127.0.0.1:{gport}/readyz", timeout=1).status == 200
            except OSError:
                return False
        wait_for(ready, 20, "the gateway's /readyz")
        gw_pid, wk_pid = traced_child(gw), traced_child(wk)
        for port, path in ((gport, "/healthz"), (gport, "/metrics"), (gport, "/"), (mport, "/metrics"),
                           (mport, "/healthz"), (mport, "/readyz")):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5).read()
            except OSError:
                pass

        async def chat():
            import websockets
            base = f"ws://127.0.0.1:{gport}/ws?user="
            async with websockets.connect(base + "alice", subprotocols=["chatmi.v1.json"]) as a, \
                    websockets.connect(base + "bob", subprotocols=["chatmi.v1.json"]) as b:
                await a.recv()
                await b.recv()
                for i in range(5):
                    await a.send(json.dumps({"op": "send", "id": str(i), "to": "bob", "text": f"hi {i}"}))
                got = 0
                while got < 5:
                    m = json.loads(await asyncio.wait_for(a.recv(), 10))
                    got += m.get("op") == "ack"
                await b.send(json.dumps({"op": "history", "id": "h", "conv": "dm:alice:bob", "after": 0}))
                while json.loads(await asyncio.wait_for(b.recv(), 10)).get("op") != "history":
                    pass
        asyncio.run(chat())
        c.ok("served HTTP and a WebSocket chat under strace")
        time.sleep(1.5)  # a few --emf records and heartbeats
        os.kill(gw_pid, signal.SIGHUP)
        wait_for(lambda: '"reloaded"' in open(os.path.join(tmp, "gateway.log")).read(), 30, "the reload")
        c.ok("reloaded under strace")
        asyncio.run(chat())
        os.kill(gw_pid, signal.SIGTERM)
        os.kill(wk_pid, signal.SIGTERM)
        c.expect(gw.wait(30) == 0 and wk.wait(30) == 0, "both exited 0 on SIGTERM under strace")
        redis.terminate()
        for name, allowed, prog in (("gw.strace", gw_allowed, "chatmi-gateway"),
                                    ("wk.strace", wk_allowed, "chatmi-worker")):
            calls = set()
            with open(os.path.join(tmp, name), errors="replace") as f:
                for line in f:
                    m = re.match(r"^\d+\s+(?:<\.\.\. )?([a-z_0-9]+)[( ]", line)
                    if m and m.group(1) not in ("exit", "killed", "resumed"):
                        calls.add(m.group(1))
            bad = sorted(calls - allowed)
            c.expect(calls and not bad, f"{prog}: all {len(calls)} system calls it made are allowed by its unit",
                     f"refused with EPERM under the unit: {bad}")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    c.done()


def main(argv):
    cmds = {"options": check_options, "ecs": check_ecs, "docker": check_docker, "syscalls": check_syscalls}
    if len(argv) != 2 or argv[1] not in cmds:
        print(__doc__, file=sys.stderr)
        return 2
    cmds[argv[1]]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
