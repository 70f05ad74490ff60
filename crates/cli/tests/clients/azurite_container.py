"""Creates a blob container on Azurite with the emulator's well-known account key (Shared Key
authorization, standard library only): the Azure back end of Strata reads and writes blobs but,
like every object_store client, does not create containers.

usage: azurite_container.py BLOB_ENDPOINT CONTAINER   (e.g. http://127.0.0.1:10000/devstoreaccount1)
"""
import base64
import hashlib
import hmac
import http.client
import sys
import urllib.parse
from email.utils import formatdate

ACCOUNT = "devstoreaccount1"
KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==")
VERSION = "2021-08-06"


def main():
    endpoint, container = sys.argv[1], sys.argv[2]
    url = urllib.parse.urlsplit(endpoint)
    path = f"{url.path.rstrip('/')}/{container}"
    date = formatdate(usegmt=True)
    headers = {"x-ms-date": date, "x-ms-version": VERSION, "Content-Length": "0"}
    canonical_headers = f"x-ms-date:{date}\nx-ms-version:{VERSION}\n"
    # The emulator's path-style URL holds the account name, so it appears twice here.
    canonical_resource = f"/{ACCOUNT}{path}\nrestype:container"
    to_sign = "PUT\n" + "\n" * 11 + canonical_headers + canonical_resource
    sig = base64.b64encode(
        hmac.new(base64.b64decode(KEY), to_sign.encode(), hashlib.sha256).digest()
    ).decode()
    headers["Authorization"] = f"SharedKey {ACCOUNT}:{sig}"
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    conn.request("PUT", f"{path}?restype=container", headers=headers)
    r = conn.getresponse()
    body = r.read().decode(errors="replace")
    if r.status not in (201, 409):
        sys.exit(f"create container: {r.status} {body}")


if __name__ == "__main__":
    main()
