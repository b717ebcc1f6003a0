"""Deletes the JetStream streams test runs leave behind (named T<12 hex>_<queue>),
so repeated CI runs on one machine do not pile them up. Talks the NATS protocol
directly: no client library needed."""

import socket, json, re
s=socket.create_connection(("127.0.0.1",4222)); f=s.makefile("rb")
f.readline()
s.sendall(b'CONNECT {"verbose":false}\r\nSUB _INBOX.x 1\r\n')
def req(subj, body=b"{}"):
    s.sendall(b"PUB %s _INBOX.x %d\r\n%s\r\n" % (subj.encode(), len(body), body))
    while True:
        line=f.readline()
        if line.startswith(b"MSG"):
            n=int(line.split()[-1]); data=f.read(n); f.readline(); return json.loads(data)
        if line.startswith(b"PING"): s.sendall(b"PONG\r\n")
names=req("$JS.API.STREAM.NAMES").get("streams") or []
pat=re.compile(r"^T[0-9a-fA-F]{12}_")
gone=0
for n in names:
    if pat.match(n):
        r=req("$JS.API.STREAM.DELETE."+n); gone+=1
print(f"ci: deleted {gone} test streams")
