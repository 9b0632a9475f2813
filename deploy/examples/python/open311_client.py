#!/usr/bin/env python3
"""Create a request over Open311 GeoReport v2 the way a stock client does, with the Python
standard library only (urllib, no Bianmin code).

1. ``GET services.json``: finds ``--service-code`` among the services (and that it has
   metadata, a service definition).
2. ``GET services/<code>.json``: reads the service definition and fills its attributes as
   ``attribute[<code>]`` form fields: the values given with ``--set code=value`` (repeatable;
   a multivaluelist takes ``a;b``), else for a *required* attribute a value of its datatype
   (the first key of a list, today's date for a datetime, ``1`` for a number). An attribute
   neither set nor required is left out. ``--set`` of a code the definition does not list
   ends the script with exit code 2 (it would be refused anyway).
3. ``POST requests.json`` (``application/x-www-form-urlencoded``) with ``api_key``,
   ``jurisdiction_id``, ``service_code``, ``lat``/``long`` (WGS-84), ``description``, the
   attributes and ``media_url`` (the engine fetches the file when ``media.fetch_media_urls``
   is on).
4. ``GET requests/<id>.json``: prints the request as the server publishes it.

Output: one line ``created <service_request_id>``, then the request as JSON. Any HTTP error
prints the server's error array and ends with exit code 1.

    python3 open311_client.py --base http://127.0.0.1:8080/open311/v2 --api-key SECRET \\
        --jurisdiction bianmin.local --service-code um-streetlight --lat 34.765 --long 117.555 \\
        --set pole_number=LD-0417 --media-url https://example.org/photo.jpg \\
        --description 'The lamp at the north gate is out.'

Endpoints and attribute types: docs/open311.md.
"""

import argparse
import datetime
import json
import sys
import urllib.error
import urllib.parse
import urllib.request


def call(method, url, form=None):
    """One HTTP call; the decoded JSON answer, or exit 1 with the server's error."""
    data = urllib.parse.urlencode(form, doseq=True).encode() if form is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.load(answer)
    except urllib.error.HTTPError as error:
        print(f"{method} {url}: {error.code} {error.read().decode(errors='replace')}")
        sys.exit(1)


def default_value(attribute):
    """A value of the attribute's datatype, for a required attribute nobody set."""
    kind = attribute["datatype"]
    if kind in ("singlevaluelist", "multivaluelist"):
        return [attribute["values"][0]["key"]]
    if kind == "datetime":
        return [datetime.date.today().isoformat()]
    if kind == "number":
        return ["1"]
    return ["example"]


def fill(definition, settings):
    """The attribute[...] form fields for the definition, from --set values and defaults."""
    known = {a["code"]: a for a in definition["attributes"] if a["variable"]}
    unknown = sorted(set(settings) - set(known))
    if unknown:
        print(f"not attributes of {definition['service_code']}: {', '.join(unknown)}")
        sys.exit(2)
    fields = []
    for attribute in sorted(known.values(), key=lambda a: a["order"]):
        code = attribute["code"]
        if code in settings:
            raw = settings[code]
            values = raw.split(";") if attribute["datatype"] == "multivaluelist" else [raw]
        elif attribute["required"]:
            values = default_value(attribute)
        else:
            continue
        key = f"attribute[{code}][]" if attribute["datatype"] == "multivaluelist" else f"attribute[{code}]"
        fields.extend((key, value) for value in values)
    return fields


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the Open311 base URL, …/open311/v2")
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--jurisdiction", required=True)
    parser.add_argument("--service-code", required=True)
    parser.add_argument("--lat", required=True, type=float)
    parser.add_argument("--long", required=True, type=float)
    parser.add_argument("--description", default="")
    parser.add_argument("--media-url")
    parser.add_argument("--set", action="append", default=[], metavar="CODE=VALUE")
    args = parser.parse_args()
    settings = dict(s.split("=", 1) for s in args.set)
    base = args.base.rstrip("/")
    query = urllib.parse.urlencode({"jurisdiction_id": args.jurisdiction})

    services = call("GET", f"{base}/services.json?{query}")
    service = next((s for s in services if s["service_code"] == args.service_code), None)
    if service is None or not service["metadata"]:
        print(f"no service {args.service_code} with a definition at {base}")
        sys.exit(1)
    code = urllib.parse.quote(args.service_code)
    definition = call("GET", f"{base}/services/{code}.json?{query}")

    form = [
        ("api_key", args.api_key),
        ("jurisdiction_id", args.jurisdiction),
        ("service_code", args.service_code),
        ("lat", repr(args.lat)),
        ("long", repr(args.long)),
    ]
    if args.description:
        form.append(("description", args.description))
    if args.media_url:
        form.append(("media_url", args.media_url))
    form.extend(fill(definition, settings))
    created = call("POST", f"{base}/requests.json", form)
    request_id = created[0]["service_request_id"]
    print(f"created {request_id}")

    published = call("GET", f"{base}/requests/{request_id}.json?{query}")
    print(json.dumps(published[0], ensure_ascii=False))


if __name__ == "__main__":
    main()
