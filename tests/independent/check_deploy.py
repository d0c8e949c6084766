#!/usr/bin/env python3
"""An independent check of `etl deploy` and `etl doctor` with the tools users trust: cfn-lint
lints the templates, moto's CloudFormation creates one as a stack, and a moto server of its own,
enforcing IAM policies, denies the doctor an action.

Usage: check_deploy.py path/to/etl

Checks, each printed as one line:
  1. the templates of the example pipeline and of a larger pipeline (buckets, KMS, replication,
     triggers, schedules, Athena, a queue) pass cfn-lint with no error or warning;
  2. the larger template, created as a stack on the local endpoint (AWS_ENDPOINT_URL), makes
     the buckets (encrypted), the roles, the rules, the topic and the state machine it declares;
  3. against an endpoint that enforces IAM, the doctor run as a user whose policy denies
     s3:PutObject on a target reports that action, on that prefix, with a statement granting
     it, exits 1, and leaves no object behind; a bucket that does not exist is named;
  4. as a user holding exactly the template's runner policy, the source is read and the doctor
     finds the buckets.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid

import boto3

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.dirname(sys.executable)


def fail(message):
    print(f"FAIL: {message}")
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def run(command, env=None):
    return subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(env or {})})


def write_pipeline(folder, raw, lake, encryption="sse-kms", name="sales"):
    """The larger pipeline: crawls started by objects, a job on its own schedule, buckets
    encrypted as `encryption` says and replicated."""
    os.makedirs(folder, exist_ok=True)
    files = {
        "pipeline.toml": f"""name = "{name}"
schedule = "cron(0 2 * * ? *)"
[deploy]
cpu = 2048
memory = 8192
create_buckets = true
bucket_encryption = "{encryption}"
replicas = {{ {lake} = "{lake}-dr" }}
{'replica_kms_key_arn = "arn:aws:kms:eu-west-1:123456789012:key/replica"' if encryption == "sse-kms" else ""}
log_retention_days = 90
""",
        "orders.toml": f"""name = "orders"
[[source]]
table = "raw.orders"
location = "s3://{raw}/orders/"
format = "csv"
[[target]]
table = "clean.orders"
query = "SELECT * FROM raw.orders"
location = "s3://{lake}/clean/orders/"
[[trigger]]
s3 = "s3://{raw}/orders/"
suffix = ".csv"
""",
        "report.toml": f"""name = "report"
schedule = "rate(6 hours)"
[[target]]
table = "mart.report"
query = "SELECT count(*) AS n FROM clean.orders"
location = "s3://{lake}/mart/report/"
""",
    }
    for name, text in files.items():
        with open(os.path.join(folder, name), "w") as f:
            f.write(text)


def deploy(binary, folder, template, *extra):
    result = run([binary, "deploy", folder, "--template", template, "--image", "etl:check", "--json", *extra])
    check(result.returncode == 0, f"etl deploy {folder} exited {result.returncode}: {result.stderr}")
    return json.loads(result.stdout)


def lint(work, binary):
    example = os.path.join(work, "example.yaml")
    deploy(binary, os.path.join(REPO, "sql", "pipeline_example"), example)
    larger_folder = os.path.join(work, "larger")
    write_pipeline(larger_folder, "raw-in", "the-lake")
    larger = os.path.join(work, "larger.yaml")
    deploy(binary, larger_folder, larger, "--athena", "primary", "--athena-results", "s3://the-lake/athena/",
           "--queue-arn", "arn:aws:sqs:us-east-1:123456789012:events")
    larger_json = os.path.join(work, "larger.json")
    deploy(binary, larger_folder, larger_json)
    for template in (example, larger, larger_json):
        result = run([os.path.join(VENV_BIN, "cfn-lint"), template])
        check(result.returncode == 0, f"cfn-lint {os.path.basename(template)}:\n{result.stdout}{result.stderr}")
    print("ok 1: the example's and a larger pipeline's templates (YAML and JSON) pass cfn-lint")


def stack(work, binary):
    suffix = uuid.uuid4().hex[:8]
    raw, lake = f"raw-{suffix}", f"lake-{suffix}"
    folder = os.path.join(work, "stacked")
    # moto's CloudFormation cannot tag a KMS key (it reads the tags as KMS's API spells them);
    # the SSE-KMS template is linted above.
    pipeline = f"sales_{suffix}"
    write_pipeline(folder, raw, lake, encryption="sse-s3", name=pipeline)
    template = os.path.join(work, "stacked.json")
    deploy(binary, folder, template)
    ec2 = boto3.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.0.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName=f"etl-{suffix}", Description="etl", VpcId=vpc)["GroupId"]
    cloudformation = boto3.client("cloudformation")
    with open(template) as f:
        body = f.read()
    name = f"etl-{pipeline}".replace("_", "-")
    cloudformation.create_stack(
        StackName=name,
        TemplateBody=body,
        Parameters=[
            {"ParameterKey": "Subnets", "ParameterValue": subnet},
            {"ParameterKey": "SecurityGroups", "ParameterValue": group},
        ],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    status = cloudformation.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
    check(status == "CREATE_COMPLETE", f"stack {name}: {status}")
    s3 = boto3.client("s3")
    for bucket in (raw, lake):
        s3.head_bucket(Bucket=bucket)
        # moto's CloudFormation applies a bucket's encryption but not its versioning (which
        # tests/deploy.rs checks in the template).
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        algorithm = rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"]
        check(algorithm == "AES256", f"bucket {bucket} encryption: {rules}")
    iam = boto3.client("iam")
    for role in ("runner", "execution", "states", "events"):
        iam.get_role(RoleName=f"etl-{pipeline}-{role}")
    runner = f"etl-{pipeline}-runner"
    policies = iam.list_role_policies(RoleName=runner)["PolicyNames"]
    check(policies == [runner], f"the runner role's policies: {policies}")
    events = boto3.client("events")
    rules = {r["Name"] for r in events.list_rules(NamePrefix=f"etl-{pipeline}-")["Rules"]}
    expected = {f"etl-{pipeline}-schedule", f"etl-{pipeline}-job-report", f"etl-{pipeline}-trigger-1"}
    check(expected <= rules, f"rules: {rules}")
    topics = [t["TopicArn"] for t in boto3.client("sns").list_topics()["Topics"]]
    check(any(t.endswith(f":etl-{pipeline}-failures") for t in topics), f"topics: {topics}")
    machines = [m["name"] for m in boto3.client("stepfunctions").list_state_machines()["stateMachines"]]
    check(f"etl-{pipeline}-pipeline" in machines, f"state machines: {machines}")
    outputs = {o["OutputKey"] for o in cloudformation.describe_stacks(StackName=name)["Stacks"][0].get("Outputs", [])}
    check({"RunnerRoleArn", "FailureTopicArn", "StateMachineArn"} <= outputs, f"outputs: {outputs}")
    cloudformation.delete_stack(StackName=name)
    print("ok 2: the template, created as a stack, makes its buckets (encrypted), roles, rules, topic and state machine")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def set_auth(endpoint, unauthenticated_requests):
    """Moto checks every request against IAM after that many more (`inf`: never)."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset-auth", data=unauthenticated_requests,
                                     method="POST", headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(request)


def doctor_denied(work, binary):
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = open(os.path.join(work, "moto-iam.log"), "w")
    server = subprocess.Popen([os.path.join(VENV_BIN, "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/")
                break
            except OSError:
                time.sleep(0.1)
        admin = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                     aws_secret_access_key="testing")
        s3 = boto3.client("s3", **admin)
        for bucket in ("raw", "lake"):
            s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket="raw", Key="orders/a.csv", Body=b"id\n1\n")
        glue = boto3.client("glue", **admin)
        for database in ("raw", "clean"):
            glue.create_database(DatabaseInput={"Name": database})
        iam = boto3.client("iam", **admin)
        iam.create_user(UserName="runner")
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": ["s3:*", "glue:*", "sts:GetCallerIdentity"], "Resource": "*"},
                {"Effect": "Deny", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::lake/clean/*"},
            ],
        }
        iam.put_user_policy(UserName="runner", PolicyName="almost", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="runner")["AccessKey"]
        folder = os.path.join(work, "denied")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "orders.toml"), "w") as f:
            f.write('name = "orders"\n[[source]]\ntable = "raw.orders"\nlocation = "s3://raw/orders/"\n'
                    '[[target]]\ntable = "clean.orders"\nquery = "SELECT * FROM raw.orders"\n'
                    'location = "s3://lake/clean/orders/"\n')
        with open(os.path.join(folder, "ghost.toml"), "w") as f:
            f.write('name = "ghost"\n[[target]]\ntable = "clean.ghost"\nquery = "SELECT 1 AS x"\n'
                    'location = "s3://no-such-bucket/ghost/"\n')
        # From here on, every request is checked against the caller's policies.
        set_auth(endpoint, b"0")
        env = {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
            "ETL_CATALOG": "glue",
            "ETL_HOME": os.path.join(work, "home"),
        }
        env.pop("AWS_SESSION_TOKEN", None)
        environment = {k: v for k, v in os.environ.items() if k != "AWS_SESSION_TOKEN"}
        environment.update(env)
        result = subprocess.run([binary, "doctor", folder, "--json"], capture_output=True, text=True, env=environment)
        check(result.returncode == 1, f"doctor exited {result.returncode}: {result.stdout}{result.stderr}")
        checks = json.loads(result.stdout)["checks"]
        failed = [c for c in checks if c["status"] == "failed"]
        writes = [c for c in failed if c["check"].startswith("write s3://lake/clean/orders/_etl_staging/")]
        check(writes and writes[0].get("missing_action") == "s3:PutObject", f"no write names s3:PutObject: {failed}")
        denied = writes[0]
        check(denied["resource"] == "arn:aws:s3:::lake/clean/orders/*", f"the denied resource: {denied}")
        statement = denied["statement"]
        check(statement["Action"] == ["s3:PutObject"] and statement["Resource"] == ["arn:aws:s3:::lake/clean/orders/*"],
              f"the statement that grants it: {statement}")
        check(any(c["check"] == "bucket no-such-bucket exists" for c in failed), f"the missing bucket: {failed}")
        read = [c for c in checks if c["check"] == "read s3://raw/orders/a.csv"]
        check(read and read[0]["status"] == "ok", f"reading the source: {read}")
        # Nothing was written or changed: back to no authentication to look.
        set_auth(endpoint, b"inf")
        left = s3.list_objects_v2(Bucket="lake").get("KeyCount", 0)
        check(left == 0, f"the doctor left {left} object(s) in lake")
        uploads = s3.list_multipart_uploads(Bucket="lake").get("Uploads", [])
        check(not uploads, f"the doctor left multipart uploads: {uploads}")
        print("ok 3: the doctor names the denied s3:PutObject on lake/clean/orders/* with its statement, "
              "the missing bucket, exits 1 and changes nothing")
        runner_policy_suffices(work, binary, endpoint, iam, environment)
    finally:
        server.terminate()
        server.wait()
        log.close()


def runner_policy_suffices(work, binary, endpoint, iam, environment):
    """4. As a user holding exactly the template's runner policy, a source location is read
    (runs ask for it as an object before listing it) and the doctor finds both buckets (it
    asked with HeadBucket, which needs listing the whole bucket, where the policy allows the
    used prefixes)."""
    folder = os.path.join(work, "granted")
    os.makedirs(folder, exist_ok=True)
    shutil.copy(os.path.join(work, "denied", "orders.toml"), folder)
    template = os.path.join(work, "granted.json")
    deploy(binary, folder, template, "--format", "json")
    with open(template) as f:
        role = json.load(f)["Resources"]["RunnerRole"]["Properties"]
    substitutions = {"${AWS::Partition}": "aws", "${AWS::Region}": "us-east-1", "${AWS::AccountId}": "123456789012",
                     "${FailureTopic}": "arn:aws:sns:us-east-1:123456789012:etl-failures"}

    def resolved(value):
        if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
            text = value["Fn::Sub"]
            for name, replacement in substitutions.items():
                text = text.replace(name, replacement)
            return text
        if isinstance(value, dict):
            return {k: resolved(v) for k, v in value.items()}
        if isinstance(value, list):
            return [resolved(v) for v in value]
        return value

    policy = resolved(role["Policies"][0]["PolicyDocument"])
    policy["Statement"].append({"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"})
    set_auth(endpoint, b"inf")
    iam.create_user(UserName="deployed")
    iam.put_user_policy(UserName="deployed", PolicyName="runner", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="deployed")["AccessKey"]
    env = dict(environment, AWS_ACCESS_KEY_ID=key["AccessKeyId"], AWS_SECRET_ACCESS_KEY=key["SecretAccessKey"])
    set_auth(endpoint, b"0")
    try:
        inferred = subprocess.run([binary, "infer", "s3://raw/orders/", "--json"], capture_output=True, text=True,
                                  env=env)
        check(inferred.returncode == 0, f"reading the source with the runner's policy: {inferred.stderr}")
        result = subprocess.run([binary, "doctor", folder, "--json"], capture_output=True, text=True, env=env)
        checks = {c["check"]: c for c in json.loads(result.stdout)["checks"]}
        for bucket in ("raw", "lake"):
            found = checks.get(f"bucket {bucket} exists", {})
            check(found.get("status") == "ok", f"bucket {bucket} under the runner's policy: {found}")
    finally:
        set_auth(endpoint, b"inf")
    print("ok 4: with exactly the template's runner policy, the source is read and the doctor finds both buckets")


def main():
    binary = os.path.abspath(sys.argv[1])
    work = tempfile.mkdtemp(prefix="etl-deploy-check-")
    try:
        lint(work, binary)
        stack(work, binary)
        doctor_denied(work, binary)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
