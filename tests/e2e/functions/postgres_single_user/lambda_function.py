"""A single-user PostgreSQL rotation function written to the contract of AWS's
SecretsManagerRDSPostgreSQLRotationSingleUser template (written for strongroom's tests, not
copied): the same Secrets Manager calls, in the same order, with the same expectations, and
the same driver (pg8000, from requirements.txt). If strongroom runs this unchanged, it runs
AWS's template unchanged.

The secret is AWS's JSON shape: engine, host, port, username, password, dbname.
"""

import json
import logging
import os

import boto3
import pg8000

logger = logging.getLogger()
logger.setLevel(logging.INFO)


def lambda_handler(event, context):
    arn = event["SecretId"]
    token = event["ClientRequestToken"]
    step = event["Step"]

    # AWS's templates talk to the endpoint Lambda hands them, not a hard-coded one.
    service_client = boto3.client("secretsmanager", endpoint_url=os.environ["SECRETS_MANAGER_ENDPOINT"])

    metadata = service_client.describe_secret(SecretId=arn)
    if "RotationEnabled" in metadata and not metadata["RotationEnabled"]:
        raise ValueError("Secret %s is not enabled for rotation" % arn)
    versions = metadata["VersionIdsToStages"]
    if token not in versions:
        raise ValueError("Secret version %s has no stage for rotation of secret %s." % (token, arn))
    if "AWSCURRENT" in versions[token]:
        logger.info("Secret version %s already set as AWSCURRENT for secret %s.", token, arn)
        return
    if "AWSPENDING" not in versions[token]:
        raise ValueError("Secret version %s not set as AWSPENDING for rotation of secret %s." % (token, arn))

    if step == "createSecret":
        create_secret(service_client, arn, token)
    elif step == "setSecret":
        set_secret(service_client, arn, token)
    elif step == "testSecret":
        test_secret(service_client, arn, token)
    elif step == "finishSecret":
        finish_secret(service_client, arn, token)
    else:
        raise ValueError("Invalid step parameter %s for secret %s" % (step, arn))


def create_secret(service_client, arn, token):
    current = get_secret_dict(service_client, arn, "AWSCURRENT")
    try:
        # The version exists (RotateSecret made it) but has no value until we store one:
        # Secrets Manager answers ResourceNotFoundException, and that is what says "create it".
        get_secret_dict(service_client, arn, "AWSPENDING", token)
        logger.info("createSecret: a value already exists for version %s of %s.", token, arn)
    except service_client.exceptions.ResourceNotFoundException:
        exclude = os.environ.get("EXCLUDE_CHARACTERS", "/@\"'\\")
        current["password"] = service_client.get_random_password(ExcludeCharacters=exclude)["RandomPassword"]
        service_client.put_secret_value(SecretId=arn, ClientRequestToken=token,
                                        SecretString=json.dumps(current), VersionStages=["AWSPENDING"])
        logger.info("createSecret: stored a new password in version %s of %s.", token, arn)


def set_secret(service_client, arn, token):
    pending = get_secret_dict(service_client, arn, "AWSPENDING", token)
    conn = get_connection(pending)
    if conn:  # an earlier attempt already set it
        conn.close()
        logger.info("setSecret: the pending password of %s already logs in.", arn)
        return
    current = get_secret_dict(service_client, arn, "AWSCURRENT")
    if current["username"] != pending["username"]:
        raise ValueError("Attempting to modify user %s other than current user %s"
                         % (pending["username"], current["username"]))
    if current["host"] != pending["host"]:
        raise ValueError("Attempting to modify user for host %s other than current host %s"
                         % (pending["host"], current["host"]))
    conn = get_connection(current)
    if not conn:
        try:
            conn = get_connection(get_secret_dict(service_client, arn, "AWSPREVIOUS"))
        except service_client.exceptions.ResourceNotFoundException:
            conn = None
    if not conn:
        raise ValueError("Unable to log into database with previous, current, or pending secret of secret arn %s"
                         % arn)
    try:
        cur = conn.cursor()
        # Quote on the server: ALTER ROLE takes no bind parameters.
        cur.execute("SELECT quote_ident(%s), quote_literal(%s)", (pending["username"], pending["password"]))
        user, password = cur.fetchone()
        cur.execute("ALTER USER %s WITH PASSWORD %s" % (user, password))
        conn.commit()
        logger.info("setSecret: set the password of %s in PostgreSQL.", pending["username"])
    finally:
        conn.close()


def test_secret(service_client, arn, token):
    conn = get_connection(get_secret_dict(service_client, arn, "AWSPENDING", token))
    if not conn:
        raise ValueError("Unable to log into database with pending secret of secret ARN %s" % arn)
    try:
        cur = conn.cursor()
        cur.execute("SELECT NOW()")
        conn.commit()
    finally:
        conn.close()
    logger.info("testSecret: the pending secret of %s logs in.", arn)


def finish_secret(service_client, arn, token):
    metadata = service_client.describe_secret(SecretId=arn)
    current_version = None
    for version, stages in metadata["VersionIdsToStages"].items():
        if "AWSCURRENT" in stages:
            if version == token:
                logger.info("finishSecret: version %s is already AWSCURRENT for %s.", version, arn)
                return
            current_version = version
            break
    service_client.update_secret_version_stage(SecretId=arn, VersionStage="AWSCURRENT", MoveToVersionId=token,
                                               RemoveFromVersionId=current_version)
    logger.info("finishSecret: moved AWSCURRENT to version %s of %s.", token, arn)


def get_connection(secret):
    try:
        return pg8000.connect(host=secret["host"], user=secret["username"], password=secret["password"],
                              database=secret.get("dbname", "postgres"), port=int(secret.get("port", 5432)),
                              timeout=5)
    except (pg8000.exceptions.InterfaceError, pg8000.exceptions.DatabaseError):
        return None


def get_secret_dict(service_client, arn, stage, token=None):
    if token:
        value = service_client.get_secret_value(SecretId=arn, VersionId=token, VersionStage=stage)
    else:
        value = service_client.get_secret_value(SecretId=arn, VersionStage=stage)
    secret = json.loads(value["SecretString"])
    for field in ("host", "username", "password"):
        if field not in secret:
            raise KeyError("%s key is missing from secret JSON" % field)
    if secret.get("engine", "postgres") != "postgres":
        raise KeyError("Database engine must be set to 'postgres' in order to use this rotation lambda")
    return secret
