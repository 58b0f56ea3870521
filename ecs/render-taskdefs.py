#!/usr/bin/python3
"""render-taskdefs.py: write ecs/gateway-taskdef.json and ecs/worker-taskdef.json
from the task definitions of ecs/chatmi.yaml, for `aws ecs register-task-definition
--cli-input-json file://ecs/gateway-taskdef.json` without CloudFormation.

The template is the one source: CloudFormation's property names become the ECS API's
(ContainerDefinitions -> containerDefinitions), parameters take their defaults, and
the values only CloudFormation knows (the stack's name, region, account, the ARNs of
the role and secrets it creates) become the placeholders below: replace them before
registering (docs/deploy-ecs.md, "Without CloudFormation").

  ecs/render-taskdefs.py           rewrite the two files
  ecs/render-taskdefs.py --check   exit 1 when they differ from what the template gives
"""
import json
import os
import re
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATE = os.path.join(HERE, "chatmi.yaml")
OUTPUTS = {"GatewayTaskDefinition": "gateway-taskdef.json", "WorkerTaskDefinition": "worker-taskdef.json"}

ACCOUNT = "123456789012"
REGION = "eu-west-1"
STACK = "chatmi"
PSEUDO = {"AWS::StackName": STACK, "AWS::Region": REGION, "AWS::AccountId": ACCOUNT,
          "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com", "AWS::NoValue": None}
# What CloudFormation would return for the resources the task definitions name.
PLACEHOLDERS = {
    "Image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/chatmi:0.1.0",
    "TaskExecutionRole.Arn": f"arn:aws:iam::{ACCOUNT}:role/chatmi-task-execution",
    "JwtSecret": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:chatmi/{STACK}/jwt-key",
    "RedisUrlSecret": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:chatmi/{STACK}/redis-url",
    "GatewayLogGroup": f"/chatmi/{STACK}/gateway",
    "WorkerLogGroup": f"/chatmi/{STACK}/worker",
}
# Maps whose keys are data, not property names: kept as they are.
OPAQUE = {"Options", "DockerLabels", "SystemControls"}


class Tag:
    """A CloudFormation short-form intrinsic (!Ref, !Sub, ...)."""

    def __init__(self, name, value):
        self.name, self.value = name, value

    def __repr__(self):
        return f"!{self.name} {self.value!r}"


class CfnLoader(yaml.SafeLoader):
    pass


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return Tag(suffix, value)


CfnLoader.add_multi_constructor("!", _tag)


def load(path=TEMPLATE):
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=CfnLoader)


def intrinsic(v):
    """(name, argument) of an intrinsic in short or long form, else None."""
    if isinstance(v, Tag):
        return v.name, v.value
    if isinstance(v, dict) and len(v) == 1:
        (k, a), = v.items()
        if k == "Ref":
            return "Ref", a
        if k.startswith("Fn::"):
            return k[4:], a
    return None


class Resolver:
    def __init__(self, template):
        self.t = template
        self.params = {k: p.get("Default") for k, p in template.get("Parameters", {}).items()}

    def ref(self, name):
        if name in PSEUDO:
            return PSEUDO[name]
        if name in PLACEHOLDERS:
            return PLACEHOLDERS[name]
        if name in self.params:
            return self.params[name]
        raise KeyError(f"no value for Ref {name}")

    def sub(self, text):
        def one(m):
            key = m.group(1)
            return str(PLACEHOLDERS[key] if key in PLACEHOLDERS else self.ref(key))
        return re.sub(r"\$\{([^}!]+)\}", one, text)

    def __call__(self, v):
        i = intrinsic(v)
        if i is not None:
            name, arg = i
            if name == "Ref":
                return self.ref(arg)
            if name == "Sub":
                if isinstance(arg, list):
                    raise ValueError("Fn::Sub with a variable map is not supported here")
                return self.sub(arg)
            if name == "GetAtt":
                key = arg if isinstance(arg, str) else ".".join(arg)
                return PLACEHOLDERS[key]
            if name == "FindInMap":
                m, k1, k2 = (self(a) for a in arg)
                return self.t["Mappings"][m][str(k1)][k2]
            raise ValueError(f"intrinsic {name} is not supported in task definitions")
        if isinstance(v, dict):
            return {k: self(x) for k, x in v.items()}
        if isinstance(v, list):
            return [self(x) for x in v]
        return v


def api_shape(v, key=None):
    """CloudFormation property names -> ECS API member names (lowerCamelCase)."""
    if isinstance(v, dict):
        if key in OPAQUE:
            return dict(v)
        return {k[0].lower() + k[1:]: api_shape(x, k) for k, x in v.items()}
    if isinstance(v, list):
        return [api_shape(x, key) for x in v]
    return v


def render(template):
    res = Resolver(template)
    out = {}
    for name, filename in OUTPUTS.items():
        props = template["Resources"][name]["Properties"]
        td = api_shape(res(props))
        # The API wants numbers where CloudFormation takes strings.
        for c in td["containerDefinitions"]:
            if "stopTimeout" in c:
                c["stopTimeout"] = int(c["stopTimeout"])
        out[filename] = json.dumps(td, indent=2, sort_keys=False) + "\n"
    return out


def main(argv):
    check = "--check" in argv[1:]
    stale = []
    for filename, text in render(load()).items():
        path = os.path.join(HERE, filename)
        old = open(path, encoding="utf-8").read() if os.path.exists(path) else None
        if old == text:
            continue
        if check:
            stale.append(filename)
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            print(f"render-taskdefs: wrote {path}")
    if stale:
        print("render-taskdefs: out of date with ecs/chatmi.yaml: " + ", ".join(stale)
              + " (run ecs/render-taskdefs.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
