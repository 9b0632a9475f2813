#!/usr/bin/env python3
"""Submit a resident request to Bianmin over NATS and follow its events as they happen.

1. Sends an intake document to ``<prefix>.intake.<channel>`` (request-reply) with an identity
   header, and prints the engine's answer (``request_id``, ``created``, ``version``) or its
   error (header ``Bianmin-Error`` and ``{"error": {code, message, field}}``).
2. Follows the request on the event log: an ordered JetStream consumer on
   ``<prefix>.events.<request_id>`` delivers every commit of the request so far and then each
   new one as it is appended; every event is printed as one line. Stops when the request is
   archived or after ``--follow-seconds``.

Every document the engine answers or publishes is validated against its JSON Schema
(``schemas/json/v1``, ``--schemas``): the intake reply, the error reply and each commit. A
document the schema refuses ends the script with exit code 2.

Needs nats-py and jsonschema (``pip install nats-py jsonschema``). Subjects, headers and
payloads: docs/nats-api.md.

    python3 submit_and_follow.py --server nats://127.0.0.1:4222 \\
        --actor 'hotline-gw;intake_system' --external-id 12345-0009
"""

import argparse
import asyncio
import json
import pathlib
import sys

import jsonschema
import nats
from nats.js.api import DeliverPolicy

SCHEMAS = pathlib.Path(__file__).resolve().parents[3] / "schemas" / "json" / "v1"


class Schemas:
    """The published JSON Schemas, one validator per document kind."""

    def __init__(self, directory):
        self.validators = {}
        for name in ("intake_reply", "error_reply", "commit"):
            path = pathlib.Path(directory) / f"{name}.schema.json"
            with open(path, encoding="utf-8") as f:
                schema = json.load(f)
            cls = jsonschema.validators.validator_for(schema)
            cls.check_schema(schema)
            self.validators[name] = cls(schema)

    def check(self, name, document):
        """Exits with code 2 when ``document`` is not a valid ``name`` document."""
        errors = sorted(self.validators[name].iter_errors(document), key=str)
        if errors:
            where = "/".join(str(p) for p in errors[0].absolute_path)
            print(f"schema violation: {name} at '{where}': {errors[0].message}",
                  file=sys.stderr, flush=True)
            sys.exit(2)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server", default="nats://127.0.0.1:4222", help="NATS server URL")
    p.add_argument("--user", help="NATS user (e.g. 'integrator' of deploy/nats/accounts.conf)")
    p.add_argument("--password-file", help="file holding the NATS user's password")
    p.add_argument("--prefix", default="bianmin", help="subject prefix (nats.subject_prefix)")
    p.add_argument("--stream", default="BIANMIN_EVENTS", help="event log stream (nats.stream)")
    p.add_argument("--actor", help="dev identity '<id>;<role>[;<unit>]' (engine in dev mode)")
    p.add_argument("--token", help="API token, sent as 'Authorization: Bearer <token>'")
    p.add_argument("--channel", default="hotline", help="intake channel")
    p.add_argument("--external-id", required=True, help="the upstream ticket id")
    p.add_argument("--text", default="小区北门路灯已坏三天", help="the resident's words")
    p.add_argument("--follow-seconds", type=float, default=60.0,
                   help="stop following after this long (0: do not follow)")
    p.add_argument("--schemas", default=str(SCHEMAS),
                   help="directory of the JSON Schemas the answers are validated against")
    return p.parse_args()


def identity_headers(args):
    if args.token:
        return {"Authorization": f"Bearer {args.token}"}
    if args.actor:
        return {"X-Bianmin-Actor": args.actor}
    sys.exit("give --token or --actor: the engine answers 'unauthenticated' without one")


async def main():
    args = parse_args()
    schemas = Schemas(args.schemas)
    login = {}
    if args.user:
        login["user"] = args.user
    if args.password_file:
        with open(args.password_file, encoding="utf-8") as f:
            login["password"] = f.read().strip()
    nc = await nats.connect(args.server, name="bianmin-python-example", **login)
    document = {
        "channel": args.channel,
        "external_id": args.external_id,
        "anonymous": False,
        "contact": {"name": "王芳", "phone": "13800001111"},
        "location": {"street": "jd-01", "community": "sq-0101", "grid": "wg-010101"},
        "text": args.text,
    }
    subject = f"{args.prefix}.intake.{args.channel}"
    msg = await nc.request(subject, json.dumps(document).encode(), timeout=10,
                           headers=identity_headers(args))
    answer = json.loads(msg.data)
    error_code = (msg.headers or {}).get("Bianmin-Error")
    if error_code:
        schemas.check("error_reply", answer)
        if answer["error"]["code"] != error_code:
            print(f"schema violation: header {error_code} differs from the body's code",
                  file=sys.stderr, flush=True)
            sys.exit(2)
        print(f"intake refused: {error_code}: {json.dumps(answer, ensure_ascii=False)}", flush=True)
        await nc.close()
        return 1
    schemas.check("intake_reply", answer)
    print(f"intake reply: {json.dumps(answer, ensure_ascii=False)}", flush=True)
    if args.follow_seconds <= 0:
        await nc.close()
        return 0

    request_id = answer["request_id"]
    archived = asyncio.Event()
    invalid = []

    async def on_commit(msg):
        commit = json.loads(msg.data)
        try:
            schemas.check("commit", commit)
        except SystemExit:
            # A callback cannot end the script: stop following and exit from main.
            invalid.append(commit.get("commit_id"))
            archived.set()
            return
        position = msg.metadata.sequence.stream
        for event in commit["events"]:
            print(
                f"event position={position} version={event['version']} type={event['type']} "
                f"occurred_at={event['occurred_at']} actor={event['actor']['id']}"
                f";{event['actor']['role']}",
                flush=True,
            )
            if event["type"] == "archived":
                archived.set()

    js = nc.jetstream()
    print(f"following {args.prefix}.events.{request_id}", flush=True)
    sub = await js.subscribe(
        f"{args.prefix}.events.{request_id}",
        stream=args.stream,
        ordered_consumer=True,
        deliver_policy=DeliverPolicy.ALL,
        cb=on_commit,
    )
    try:
        await asyncio.wait_for(archived.wait(), timeout=args.follow_seconds)
        if not invalid:
            print("archived", flush=True)
    except asyncio.TimeoutError:
        print(f"stopped after {args.follow_seconds} s", flush=True)
    await sub.unsubscribe()
    await nc.drain()
    return 2 if invalid else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
