"""Canaries for the library internals that section 5 of ollama_mcp.py builds on: each fails
loudly, naming the internal, when a release of urllib3, werkzeug or the standard library changes
it. (What the overrides achieve is tested elsewhere: one write per request, chunked bodies,
deadlines, keep-alive.)"""

import http.client
import importlib.metadata
import inspect
import os
import socket
import socketserver
import threading

import pytest
import urllib3
import urllib3.connection
import urllib3.response
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler, make_server

import ollama_mcp


def parameters(fn):
    return list(inspect.signature(fn).parameters)


def test_urllib3_is_2_x_whose_errors_the_client_translates():
    assert urllib3.__version__.split(".")[0] == "2", "requirements.txt asks for urllib3>=2,<3"
    for name in ("NameResolutionError", "NewConnectionError", "ConnectTimeoutError", "ReadTimeoutError"):
        assert hasattr(urllib3.exceptions, name), f"urllib3.exceptions.{name} (OllamaClient._translate)"


def test_a_pool_makes_its_connections_from_its_connection_cls():
    pool = urllib3.connection_from_url("http://127.0.0.1:9")
    assert issubclass(pool.ConnectionCls, http.client.HTTPConnection), "HTTPConnectionPool.ConnectionCls (_OneWrite)"
    made = pool._new_conn() if hasattr(pool, "_new_conn") else None
    assert made is None or isinstance(made, pool.ConnectionCls)


def test_urllib3_connection_request_sends_the_head_through_send():
    assert parameters(urllib3.connection.HTTPConnection.request)[:5] == ["self", "method", "url", "body", "headers"]
    assert "blocksize" in parameters(http.client.HTTPConnection.__init__), "HTTPConnection.blocksize (_OneWrite)"
    sent = []

    class Recording(urllib3.connection.HTTPConnection):
        def send(self, data):
            sent.append(data)

    conn = type("OllamaConnection", (ollama_mcp._OneWrite, Recording), {})("127.0.0.1", 9)  # as the client mixes it
    here, there = socket.socketpair()  # connected, as far as urllib3 is concerned; send() records instead
    with here, there:
        conn.sock = here
        conn.request("POST", "/api/x", body=b'{"a":1}', headers={"Content-Type": "application/json"})
    assert len(sent) == 1 and sent[0].endswith(b'\r\n\r\n{"a":1}'), "the head and a small body in one send()"
    assert b"\r\nAccept-Encoding: identity\r\n" in sent[0], "http.client asks for no compression by itself"


def test_urllib3_response_reads_at_most_once_and_shows_its_socket():
    assert "decode_content" in parameters(urllib3.response.HTTPResponse.read1), "HTTPResponse.read1 (_read1)"
    assert isinstance(inspect.getattr_static(urllib3.response.HTTPResponse, "connection"), property), (
        "HTTPResponse.connection (_read1 sets its socket's timeout)"
    )


def test_werkzeug_is_in_the_pinned_range():
    major, minor = (int(p) for p in importlib.metadata.version("werkzeug").split(".")[:2])
    assert (3, 0) <= (major, minor) < (3, 2), "requirements.txt pins werkzeug>=3.0,<3.2 for _RequestHandler"


def test_werkzeug_request_handler_has_what_the_override_uses():
    for name in ("make_environ", "handle_one_request", "parse_request", "run_wsgi", "setup", "send_error"):
        assert callable(getattr(WSGIRequestHandler, name, None)), f"WSGIRequestHandler.{name} (_RequestHandler)"


def make_environ(raw):
    """The environ werkzeug's own server builds for a raw request (sent over a real socket)."""
    seen = {}

    def app(environ, start_response):
        seen.update(environ)
        start_response("204 No Content", [])
        return [b""]

    srv = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=srv.handle_request, daemon=True).start()
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        s.sendall(raw)
        s.recv(4096)
    srv.server_close()
    return seen


def test_werkzeug_marks_a_chunked_body_as_terminated_input():
    environ = make_environ(b"POST /mcp HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    assert environ.get("wsgi.input_terminated") is True, "make_environ: wsgi.input_terminated (_Dechunked)"
    assert "werkzeug.socket" in environ, "make_environ: werkzeug.socket (a client leaving is noticed)"


def test_threaded_wsgi_server_takes_a_handler_and_serves_by_socketserver_hooks():
    assert "handler" in parameters(ThreadedWSGIServer.__init__), "ThreadedWSGIServer(..., handler=) (_HttpServer)"
    for name in ("process_request", "process_request_thread", "shutdown_request"):
        assert name in vars(socketserver.ThreadingMixIn) or hasattr(socketserver.BaseServer, name), name
    assert issubclass(ThreadedWSGIServer, socketserver.ThreadingMixIn), "ThreadedWSGIServer's threads (_HttpServer)"


@pytest.mark.skipif(not hasattr(os, "sched_setscheduler"), reason="Linux scheduling policies")
def test_sched_setscheduler_on_zero_sets_the_calling_thread():
    assert hasattr(os, "SCHED_BATCH"), "os.SCHED_BATCH (_yield_cpu)"
