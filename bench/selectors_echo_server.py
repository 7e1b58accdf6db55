#!/usr/bin/env python3
"""The Python baseline: the multi-connection echo server of the classic
`selectors` tutorials, which the course grew from.

Kept as the tutorials write it, on purpose: every connection is registered
for reading and writing at once (so the loop wakes for every writable socket),
reads at most 1024 bytes, and prints the same three kinds of lines as lab 3.
Only the `Listening on` line is new (and flushed): the bench starts it on
port 0 like every server it measures.

Usage: selectors_echo_server.py HOST PORT
"""

import selectors
import socket
import sys
import types

sel = selectors.DefaultSelector()


def accept_wrapper(sock):
    conn, addr = sock.accept()
    print(f"Accepted connection from {addr}")
    conn.setblocking(False)
    data = types.SimpleNamespace(addr=addr, inb=b"", outb=b"")
    events = selectors.EVENT_READ | selectors.EVENT_WRITE
    sel.register(conn, events, data=data)


def service_connection(key, mask):
    sock = key.fileobj
    data = key.data
    if mask & selectors.EVENT_READ:
        try:
            recv_data = sock.recv(1024)
        except ConnectionError:
            recv_data = b""
        if recv_data:
            data.outb += recv_data
        else:
            print(f"Closing connection to {data.addr}")
            sel.unregister(sock)
            sock.close()
            return
    if mask & selectors.EVENT_WRITE:
        if data.outb:
            print(f"Echoing {data.outb!r} to {data.addr}")
            try:
                sent = sock.send(data.outb)
            except ConnectionError:
                # The tutorial lets this end the server; the bench closes
                # the connection so one reset does not stop a measurement.
                sel.unregister(sock)
                sock.close()
                return
            data.outb = data.outb[sent:]


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((host, port))
    lsock.listen()
    bound_host, bound_port = lsock.getsockname()[:2]
    print(f"Listening on {bound_host}:{bound_port}", flush=True)
    lsock.setblocking(False)
    sel.register(lsock, selectors.EVENT_READ, data=None)
    try:
        while True:
            events = sel.select(timeout=None)
            for key, mask in events:
                if key.data is None:
                    accept_wrapper(key.fileobj)
                else:
                    service_connection(key, mask)
    except KeyboardInterrupt:
        pass
    finally:
        sel.close()


if __name__ == "__main__":
    main()
