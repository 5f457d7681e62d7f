#!/usr/bin/python3
"""Conformance test of fake_kube_apiserver.py against the official Kubernetes Python client.

Run with Debian's interpreter (it has python3-kubernetes):
  /usr/bin/python3 -m unittest tests/support/fake_kube_apiserver_test.py -v
Set FAKE_KUBE_VERBOSE=1 to get the fake servers' request logs on stderr at the end.
"""

import http.client
import json
import os
import select
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from kubernetes import client, watch
from kubernetes.client.rest import ApiException

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "fake_kube_apiserver.py")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

ADMIN = "admin-token"
CLIENT = "client-token"
CLIENT_USER = "system:serviceaccount:default:client"
CERT_USER = "lbkit-cert-user"


def run(cmd, cwd):
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=30)


def make_certs(d):
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run(["openssl", "req", "-x509"] + ec + ["-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
                                            "-subj", "/CN=fake-kube-test-ca",
                                            "-addext", "basicConstraints=critical,CA:TRUE",
                                            "-addext", "keyUsage=critical,keyCertSign,cRLSign"], d)
    for name, subj, ext in (
            ("server", "/CN=fake-kube-apiserver",
             "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
             "basicConstraints=CA:FALSE\n"),
            ("client", "/O=lbkit/CN=" + CERT_USER,
             "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n")):
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write(ext)
        run(["openssl", "req"] + ec + ["-keyout", name + ".key", "-out", name + ".csr",
                                       "-subj", subj], d)
        run(["openssl", "x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", name + ".pem", "-days", "2", "-extfile", name + ".ext"], d)


class FakeServer:
    """One fake_kube_apiserver.py subprocess."""

    def __init__(self, d, name, extra=()):
        self.d = d
        self.tokens = os.path.join(d, "tokens.json")
        self.log_path = os.path.join(d, name + ".log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [PYTHON, SERVER, "--cert", os.path.join(d, "server.pem"),
             "--key", os.path.join(d, "server.key"), "--client-ca", os.path.join(d, "ca.pem"),
             "--tokens", self.tokens, "--host", "127.0.0.1", "--port", "0"] + list(extra),
            stdout=subprocess.PIPE, stderr=self.log)
        deadline = time.time() + 15
        line = b""
        while time.time() < deadline and not line.endswith(b"\n"):
            r, _, _ = select.select([self.proc.stdout], [], [], deadline - time.time())
            if not r:
                break
            ch = os.read(self.proc.stdout.fileno(), 1)
            if not ch:
                break
            line += ch
        if not line.startswith(b"LISTENING "):
            self.stop()
            raise RuntimeError("fake apiserver did not start: %r\n%s" % (line, self.read_log()))
        self.port = int(line.split()[1])
        self.host = "https://127.0.0.1:%d" % self.port

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc.stdout.close()
        self.log.close()
        if os.environ.get("FAKE_KUBE_VERBOSE"):
            sys.stderr.write(self.read_log())


class Base(unittest.TestCase):
    server_args = ["--watch-timeout", "8", "--bookmark-interval", "0.3"]
    name = "main"

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="fake-kube-test-")
        try:
            make_certs(cls.tmp)
            cls.write_tokens({
                ADMIN: {"user": "admin", "allow": ["*"]},
                CLIENT: {"user": CLIENT_USER,
                         "allow": ["list:endpointslices", "watch:endpointslices",
                                   "get:services"]},
                "cert:" + CERT_USER: {"allow": ["list:*", "watch:*", "get:*"]},
            })
            cls.server = FakeServer(cls.tmp, cls.name, cls.server_args)
        except BaseException:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise
        cls.ca = os.path.join(cls.tmp, "ca.pem")
        cls.counter = 0

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def write_tokens(cls, tokens):
        path = os.path.join(cls.tmp, "tokens.json")
        with open(path + ".tmp", "w") as f:
            json.dump(tokens, f)
        os.replace(path + ".tmp", path)

    def setUp(self):
        type(self).counter += 1
        self.ns = "ns%d-%s" % (self.counter, self._testMethodName[5:20].replace("_", "-").strip("-"))

    # ---- clients
    def api_client(self, token=ADMIN, cert=False):
        cfg = client.Configuration()
        cfg.host = self.server.host
        cfg.ssl_ca_cert = self.ca
        if token:
            cfg.api_key = {"authorization": "Bearer " + token}
        if cert:
            cfg.cert_file = os.path.join(self.tmp, "client.pem")
            cfg.key_file = os.path.join(self.tmp, "client.key")
        ac = client.ApiClient(cfg)
        self.addCleanup(ac.rest_client.pool_manager.clear)
        self.addCleanup(ac.close)
        return ac

    def core(self, **kw):
        return client.CoreV1Api(self.api_client(**kw))

    def discovery(self, **kw):
        return client.DiscoveryV1Api(self.api_client(**kw))

    def custom(self, **kw):
        return client.CustomObjectsApi(self.api_client(**kw))

    def ssl_ctx(self):
        return ssl.create_default_context(cafile=self.ca)

    def raw(self, method, path, token=ADMIN, body=None, headers=None):
        conn = http.client.HTTPSConnection("127.0.0.1", self.server.port, context=self.ssl_ctx(),
                                           timeout=10)
        try:
            h = dict(headers or {})
            if token:
                h["Authorization"] = "Bearer " + token
            if body is not None and not isinstance(body, bytes):
                body = json.dumps(body).encode()
                h.setdefault("Content-Type", "application/json")
            conn.request(method, path, body=body, headers=h)
            resp = conn.getresponse()
            return resp.status, resp.headers, resp.read()
        finally:
            conn.close()

    def raw_socket(self):
        s = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        return self.ssl_ctx().wrap_socket(s, server_hostname="127.0.0.1")

    def slice_body(self, name, service="greeter", ips=("10.0.0.1",), labels=None, annotations=None):
        meta = {"name": name, "labels": dict({"kubernetes.io/service-name": service},
                                             **(labels or {}))}
        if annotations:
            meta["annotations"] = annotations
        return client.V1EndpointSlice(
            metadata=client.V1ObjectMeta(**meta), address_type="IPv4",
            endpoints=[client.V1Endpoint(addresses=[ip],
                                         conditions=client.V1EndpointConditions(ready=True))
                       for ip in ips],
            ports=[client.DiscoveryV1EndpointPort(name="grpc", port=50051, protocol="TCP")])

    def status_of(self, exc):
        return json.loads(exc.body)


class ChunkedReader:
    """Reads one HTTP/1.1 response off a raw socket, keeping the chunk boundaries."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed")
        self.buf += data

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln

    def exactly(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def head(self):
        status = self.line().decode()
        headers = {}
        while True:
            ln = self.line()
            if not ln:
                break
            k, v = ln.decode().split(":", 1)
            headers[k.strip().lower()] = v.strip()
        return status, headers

    def chunks(self):
        """Yields chunk payloads; returns normally after the terminating 0-length chunk."""
        while True:
            size = int(self.line().split(b";")[0], 16)
            if size == 0:
                assert self.line() == b"", "no CRLF after the last chunk"
                return
            data = self.exactly(size)
            assert self.exactly(2) == b"\r\n", "chunk not followed by CRLF"
            yield data


def get_request(path, token=ADMIN):
    return ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n"
            "Authorization: Bearer %s\r\n\r\n" % (path, token)).encode()


class ConformanceTest(Base):

    # ---------------------------------------------------------------- discovery
    def test_discovery(self):
        ac = self.api_client()
        self.assertEqual(client.VersionApi(ac).get_code().git_version, "v1.29.0-fake")
        groups = {g.name: g for g in client.ApisApi(ac).get_api_versions().groups}
        self.assertIn("discovery.k8s.io", groups)
        self.assertEqual([v.version for v in groups["networking.istio.io"].versions],
                         ["v1", "v1beta1", "v1alpha3"])
        names = {r.name: r for r in client.CoreV1Api(ac).get_api_resources().resources}
        self.assertTrue(names["services"].namespaced)
        self.assertFalse(names["nodes"].namespaced)
        self.assertIn("watch", names["pods"].verbs)
        self.assertIn("pods/status", names)
        res = client.DiscoveryV1Api(ac).get_api_resources()
        self.assertEqual(res.group_version, "discovery.k8s.io/v1")
        self.assertEqual([r.kind for r in res.resources], ["EndpointSlice"])
        st, _, body = self.raw("GET", "/api")
        self.assertEqual(st, 200)
        self.assertEqual(json.loads(body)["versions"], ["v1"])
        st, _, body = self.raw("GET", "/apis/networking.istio.io/v1")
        self.assertEqual({r["name"] for r in json.loads(body)["resources"]},
                         {"destinationrules", "destinationrules/status", "virtualservices",
                          "virtualservices/status"})

    # ---------------------------------------------------------------- services
    def test_service_crud(self):
        v1 = self.core()
        ns = self.ns
        svc = client.V1Service(
            metadata=client.V1ObjectMeta(name="greeter", labels={"app": "greeter"}),
            spec=client.V1ServiceSpec(selector={"app": "greeter"}, ports=[
                client.V1ServicePort(name="grpc", port=50051, target_port=8080)]))
        created = v1.create_namespaced_service(ns, svc)
        self.assertEqual(created.metadata.namespace, ns)
        self.assertTrue(created.metadata.uid)
        self.assertTrue(int(created.metadata.resource_version) > 1000)
        self.assertEqual(created.metadata.generation, 1)
        self.assertEqual(created.spec.type, "ClusterIP")
        self.assertTrue(created.spec.cluster_ip.startswith("10.96."))
        self.assertEqual(created.spec.ports[0].protocol, "TCP")
        with self.assertRaises(ApiException) as cm:
            v1.create_namespaced_service(ns, svc)
        self.assertEqual(cm.exception.status, 409)
        self.assertEqual(self.status_of(cm.exception)["reason"], "AlreadyExists")

        got = v1.read_namespaced_service("greeter", ns)
        self.assertEqual(got.metadata.resource_version, created.metadata.resource_version)
        self.assertEqual([s.metadata.name for s in v1.list_namespaced_service(ns).items],
                         ["greeter"])

        patched = v1.patch_namespaced_service(
            "greeter", ns, {"metadata": {"labels": {"tier": "backend"}},
                            "spec": {"ports": [{"name": "admin", "port": 9000}]}})
        self.assertEqual(patched.metadata.labels, {"app": "greeter", "tier": "backend"})
        self.assertEqual(sorted(p.port for p in patched.spec.ports), [9000, 50051])  # merge key
        self.assertGreater(int(patched.metadata.resource_version),
                           int(created.metadata.resource_version))
        self.assertEqual(patched.metadata.generation, 2)
        self.assertEqual(patched.spec.cluster_ip, created.spec.cluster_ip)

        # optimistic concurrency on PUT
        stale = got
        stale.metadata.labels = {"x": "y"}
        with self.assertRaises(ApiException) as cm:
            v1.replace_namespaced_service("greeter", ns, stale)
        self.assertEqual(cm.exception.status, 409)
        self.assertEqual(self.status_of(cm.exception)["message"],
                         'Operation cannot be fulfilled on services "greeter": the object has '
                         'been modified; please apply your changes to the latest version and '
                         'try again')

        # kube-apiserver answers a Service delete with the Service (ReturnDeletedObject); the
        # 22.x client's OpenAPI still says V1Status, so read the raw body.
        resp = v1.delete_namespaced_service("greeter", ns, _preload_content=False)
        deleted = json.loads(resp.data)
        self.assertEqual((deleted["kind"], deleted["metadata"]["name"]), ("Service", "greeter"))
        with self.assertRaises(ApiException) as cm:
            v1.read_namespaced_service("greeter", ns)
        self.assertEqual(cm.exception.status, 404)
        self.assertEqual(self.status_of(cm.exception), {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": 'services "greeter" not found', "reason": "NotFound",
            "details": {"name": "greeter", "kind": "services"}, "code": 404})

    # ---------------------------------------------------------------- pods
    def test_pod_lifecycle_and_status(self):
        v1 = self.core()
        ns = self.ns
        pod = client.V1Pod(
            metadata=client.V1ObjectMeta(name="greeter-0", labels={"app": "greeter"}),
            spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="greeter:1")]),
            status=client.V1PodStatus(pod_ip="192.0.2.1"))
        created = v1.create_namespaced_pod(ns, pod)
        self.assertEqual(created.status.phase, "Pending")  # status is not settable on create
        self.assertIsNone(created.status.pod_ip)
        self.assertEqual(created.spec.restart_policy, "Always")

        st = v1.patch_namespaced_pod_status("greeter-0", ns, {"status": {
            "podIP": "10.1.0.5", "podIPs": [{"ip": "10.1.0.5"}], "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}]}})
        self.assertEqual(st.status.pod_ip, "10.1.0.5")
        st = v1.patch_namespaced_pod_status("greeter-0", ns, {"status": {
            "conditions": [{"type": "ContainersReady", "status": "True"}]}})
        self.assertEqual(sorted(c.type for c in st.status.conditions),
                         ["ContainersReady", "Ready"])
        self.assertEqual(st.metadata.generation, 1)

        # a list body makes the client send application/json-patch+json
        jp = v1.patch_namespaced_pod("greeter-0", ns, [
            {"op": "add", "path": "/metadata/labels/version", "value": "v1"},
            {"op": "replace", "path": "/metadata/labels/app", "value": "greeter2"}])
        self.assertEqual(jp.metadata.labels, {"app": "greeter2", "version": "v1"})
        self.assertEqual(jp.status.pod_ip, "10.1.0.5")

        got = v1.list_namespaced_pod(ns, field_selector="status.podIP=10.1.0.5")
        self.assertEqual([p.metadata.name for p in got.items], ["greeter-0"])
        got = v1.list_pod_for_all_namespaces(label_selector="app=greeter2,version in (v1,v2)")
        self.assertIn(("greeter-0", ns), [(p.metadata.name, p.metadata.namespace)
                                          for p in got.items])

        deleted = v1.delete_namespaced_pod("greeter-0", ns)
        self.assertIsInstance(deleted, client.V1Pod)
        with self.assertRaises(ApiException) as cm:
            v1.read_namespaced_pod("greeter-0", ns)
        self.assertEqual(cm.exception.status, 404)

        # a pod bound to a node terminates gracefully: deletionTimestamp first, then gone
        bound = client.V1Pod(metadata=client.V1ObjectMeta(name="bound"),
                             spec=client.V1PodSpec(node_name="node-a", containers=[
                                 client.V1Container(name="c", image="greeter:1")]))
        v1.create_namespaced_pod(ns, bound)
        terminating = v1.delete_namespaced_pod("bound", ns)
        self.assertIsNotNone(terminating.metadata.deletion_timestamp)
        self.assertEqual(terminating.metadata.deletion_grace_period_seconds, 30)
        deadline = time.time() + 5
        while time.time() < deadline:
            try:
                v1.read_namespaced_pod("bound", ns)
            except ApiException as e:
                self.assertEqual(e.status, 404)
                break
            time.sleep(0.05)
        else:
            self.fail("gracefully deleted pod never went away")

    # ---------------------------------------------------------------- endpoint slices
    def test_endpointslice_label_selectors(self):
        d = self.discovery()
        ns = self.ns
        d.create_namespaced_endpoint_slice(ns, self.slice_body("greeter-abc", "greeter",
                                                               ("10.0.0.1", "10.0.0.2")))
        d.create_namespaced_endpoint_slice(ns, self.slice_body("other-xyz", "other"))
        got = d.list_namespaced_endpoint_slice(
            ns, label_selector="kubernetes.io/service-name=greeter")
        self.assertEqual([s.metadata.name for s in got.items], ["greeter-abc"])
        self.assertEqual([e.addresses[0] for e in got.items[0].endpoints],
                         ["10.0.0.1", "10.0.0.2"])
        self.assertTrue(got.items[0].endpoints[0].conditions.ready)
        self.assertEqual(got.items[0].ports[0].port, 50051)

        def names(sel):
            return sorted(s.metadata.name for s in
                          d.list_namespaced_endpoint_slice(ns, label_selector=sel).items)

        self.assertEqual(names("kubernetes.io/service-name in (greeter, other)"),
                         ["greeter-abc", "other-xyz"])
        self.assertEqual(names("kubernetes.io/service-name notin (greeter)"), ["other-xyz"])
        self.assertEqual(names("kubernetes.io/service-name!=other"), ["greeter-abc"])
        self.assertEqual(names("kubernetes.io/service-name==greeter"), ["greeter-abc"])
        self.assertEqual(names("kubernetes.io/service-name"), ["greeter-abc", "other-xyz"])
        self.assertEqual(names("!kubernetes.io/service-name"), [])
        self.assertEqual(names("!missing,kubernetes.io/service-name=other"), ["other-xyz"])
        self.assertEqual(sorted(s.metadata.name for s in d.list_namespaced_endpoint_slice(
            ns, field_selector="metadata.name!=other-xyz").items), ["greeter-abc"])
        with self.assertRaises(ApiException) as cm:
            d.list_namespaced_endpoint_slice(ns, label_selector="a in b")
        self.assertEqual(cm.exception.status, 400)

        # the restricted client may list slices but not pods
        dc = self.discovery(token=CLIENT)
        self.assertEqual(len(dc.list_namespaced_endpoint_slice(ns).items), 2)
        status = d.delete_namespaced_endpoint_slice("other-xyz", ns)
        self.assertEqual(status.status, "Success")
        self.assertEqual(status.details.name, "other-xyz")
        self.assertEqual(status.details.group, "discovery.k8s.io")

        with self.assertRaises(ApiException) as cm:
            d.create_namespaced_endpoint_slice(ns, client.V1EndpointSlice(
                metadata=client.V1ObjectMeta(name="bad"), address_type="IPv5", endpoints=[]))
        self.assertEqual(cm.exception.status, 422)
        st = self.status_of(cm.exception)
        self.assertEqual(st["reason"], "Invalid")
        self.assertEqual(st["details"]["kind"], "EndpointSlice")

    # ---------------------------------------------------------------- nodes
    def test_nodes(self):
        v1 = self.core()
        name = "node-" + self.ns
        v1.create_node(client.V1Node(
            metadata=client.V1ObjectMeta(name=name,
                                         labels={"topology.kubernetes.io/zone": "zone-a"}),
            status=client.V1NodeStatus(addresses=[
                client.V1NodeAddress(type="InternalIP", address="10.2.0.1")])))
        node = v1.read_node(name)
        self.assertEqual(node.metadata.labels["topology.kubernetes.io/zone"], "zone-a")
        self.assertEqual(node.status.addresses[0].address, "10.2.0.1")  # kept on create
        self.assertIsNone(node.metadata.namespace)
        # a client-certificate user with get:* may read it
        self.assertEqual(self.core(token=None, cert=True).read_node(name).metadata.name, name)
        with self.assertRaises(ApiException) as cm:
            self.core(token=CLIENT).read_node(name)
        self.assertEqual(cm.exception.status, 403)
        self.assertEqual(self.status_of(cm.exception), {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": 'nodes "%s" is forbidden: User "%s" cannot get resource "nodes" in API '
                       'group "" at the cluster scope' % (name, CLIENT_USER),
            "reason": "Forbidden", "details": {"name": name, "kind": "nodes"}, "code": 403})

    # ---------------------------------------------------------------- istio
    def test_istio_custom_objects(self):
        co = self.custom()
        ns, g = self.ns, "networking.istio.io"
        dr = {"apiVersion": g + "/v1beta1", "kind": "DestinationRule",
              "metadata": {"name": "greeter"},
              "spec": {"host": "greeter.%s.svc.cluster.local" % ns,
                       "trafficPolicy": {"loadBalancer": {"simple": "ROUND_ROBIN"}}},
              "status": {"ignored": True}}
        created = co.create_namespaced_custom_object(g, "v1beta1", ns, "destinationrules", dr)
        self.assertEqual(created["apiVersion"], g + "/v1beta1")
        self.assertNotIn("status", created)
        got = co.get_namespaced_custom_object(g, "v1", ns, "destinationrules", "greeter")
        self.assertEqual(got["apiVersion"], g + "/v1")  # same storage, served as the URL's version
        self.assertEqual(got["metadata"]["uid"], created["metadata"]["uid"])
        lst = co.list_namespaced_custom_object(g, "v1alpha3", ns, "destinationrules")
        self.assertEqual(lst["kind"], "DestinationRuleList")
        self.assertEqual(lst["apiVersion"], g + "/v1alpha3")
        self.assertEqual([(i["kind"], i["apiVersion"]) for i in lst["items"]],
                         [("DestinationRule", g + "/v1alpha3")])
        patched = co.patch_namespaced_custom_object(
            g, "v1", ns, "destinationrules", "greeter",
            {"spec": {"trafficPolicy": {"loadBalancer": {"simple": "LEAST_REQUEST"}}}})
        self.assertEqual(patched["spec"]["trafficPolicy"]["loadBalancer"]["simple"],
                         "LEAST_REQUEST")
        self.assertEqual(patched["spec"]["host"], dr["spec"]["host"])
        self.assertEqual(patched["metadata"]["generation"], 2)

        vs = {"apiVersion": g + "/v1", "kind": "VirtualService", "metadata": {"name": "greeter"},
              "spec": {"hosts": ["greeter"], "http": [{"route": [
                  {"destination": {"host": "greeter", "subset": "v1"}, "weight": 100}]}]}}
        co.create_namespaced_custom_object(g, "v1", ns, "virtualservices", vs)
        got = co.get_namespaced_custom_object(g, "v1beta1", ns, "virtualservices", "greeter")
        self.assertEqual(got["spec"]["http"][0]["route"][0]["weight"], 100)
        # custom resources need metadata.resourceVersion on PUT
        body = dict(got)
        body["metadata"] = {"name": "greeter"}
        with self.assertRaises(ApiException) as cm:
            co.replace_namespaced_custom_object(g, "v1beta1", ns, "virtualservices", "greeter",
                                                body)
        self.assertEqual(cm.exception.status, 422)
        deleted = co.delete_namespaced_custom_object(g, "v1", ns, "virtualservices", "greeter")
        self.assertEqual((deleted["kind"], deleted["status"]), ("Status", "Success"))
        st, _, body = self.raw("GET", "/apis/%s/v1alpha2/namespaces/%s/virtualservices" % (g, ns))
        self.assertEqual(st, 404)
        self.assertEqual(json.loads(body)["message"],
                         "the server could not find the requested resource")

    # ---------------------------------------------------------------- pagination
    def test_pagination(self):
        v1 = self.core()
        ns = self.ns
        for i in range(5):
            v1.create_namespaced_service(ns, client.V1Service(
                metadata=client.V1ObjectMeta(name="svc-%d" % i),
                spec=client.V1ServiceSpec(ports=[client.V1ServicePort(port=80)])))
        seen, tok, rvs, pages = [], None, set(), 0
        while True:
            page = v1.list_namespaced_service(ns, limit=2, _continue=tok)
            pages += 1
            if pages == 1:
                self.assertEqual(page.metadata.remaining_item_count, 3)
                # created after the first page: not part of this consistent list
                v1.create_namespaced_service(ns, client.V1Service(
                    metadata=client.V1ObjectMeta(name="svc-9"),
                    spec=client.V1ServiceSpec(ports=[client.V1ServicePort(port=80)])))
            seen += [s.metadata.name for s in page.items]
            rvs.add(page.metadata.resource_version)
            tok = page.metadata._continue
            if not tok:
                break
            self.assertLess(pages, 10)
        self.assertEqual(seen, ["svc-%d" % i for i in range(5)])
        self.assertEqual(pages, 3)
        self.assertEqual(len(rvs), 1)
        self.assertEqual(len(v1.list_namespaced_service(ns).items), 6)

    def test_continue_token_expires_after_compaction(self):
        v1 = self.core()
        ns = self.ns
        for i in range(3):
            v1.create_namespaced_service(ns, client.V1Service(
                metadata=client.V1ObjectMeta(name="svc-%d" % i),
                spec=client.V1ServiceSpec(ports=[client.V1ServicePort(port=80)])))
        first = v1.list_namespaced_service(ns, limit=1)
        self.assertTrue(first.metadata._continue)
        v1.patch_namespaced_service("svc-2", ns, {"metadata": {"labels": {"a": "b"}}})
        st, _, _ = self.raw("POST", "/fake/compact")
        self.assertEqual(st, 200)
        with self.assertRaises(ApiException) as cm:
            v1.list_namespaced_service(ns, limit=1, _continue=first.metadata._continue)
        self.assertEqual(cm.exception.status, 410)
        status = self.status_of(cm.exception)
        self.assertEqual(status["reason"], "Expired")
        self.assertEqual(status["message"],
                         "The provided continue parameter is too old to display a consistent "
                         "list result. You can start a new list without the continue parameter, "
                         "or use the continue token in this response to retrieve the remainder "
                         "of the results. Continuing with the provided token results in an "
                         "inconsistent list - objects that were created, modified, or deleted "
                         "between the time the first chunk was returned and now may show up in "
                         "the list.")
        rest = v1.list_namespaced_service(ns, _continue=status["metadata"]["continue"])
        self.assertEqual([s.metadata.name for s in rest.items], ["svc-1", "svc-2"])

    # ---------------------------------------------------------------- watch
    def collect(self, stream, n, deadline_s=6):
        events, deadline = [], time.time() + deadline_s
        for ev in stream:
            events.append(ev)
            if len(events) >= n or time.time() > deadline:
                break
        return events

    def test_watch_sees_changes_after_list_in_order(self):
        d = self.discovery()
        ns = self.ns
        d.create_namespaced_endpoint_slice(ns, self.slice_body("before"))
        rv = d.list_namespaced_endpoint_slice(ns).metadata.resource_version
        # changes between the list and the watch must be replayed
        d.create_namespaced_endpoint_slice(ns, self.slice_body("greeter-a"))
        d.patch_namespaced_endpoint_slice("greeter-a", ns,
                                          {"endpoints": [{"addresses": ["10.0.0.9"]}]})

        def later():
            time.sleep(0.3)
            d.delete_namespaced_endpoint_slice("greeter-a", ns)
            d.create_namespaced_endpoint_slice(ns, self.slice_body("greeter-b"))

        t = threading.Thread(target=later)
        t.start()
        w = watch.Watch()
        events = self.collect(w.stream(self.discovery(token=CLIENT).list_namespaced_endpoint_slice,
                                       ns, resource_version=rv, timeout_seconds=6), 4)
        w.stop()
        t.join(5)
        self.assertEqual([(e["type"], e["object"].metadata.name) for e in events],
                         [("ADDED", "greeter-a"), ("MODIFIED", "greeter-a"),
                          ("DELETED", "greeter-a"), ("ADDED", "greeter-b")])
        self.assertIsInstance(events[0]["object"], client.V1EndpointSlice)
        self.assertEqual(events[1]["object"].endpoints[0].addresses, ["10.0.0.9"])
        rvs = [int(e["object"].metadata.resource_version) for e in events]
        self.assertEqual(rvs, sorted(rvs))
        self.assertEqual(len(set(rvs)), 4)
        self.assertGreater(rvs[0], int(rv))
        self.assertEqual(events[0]["raw_object"]["kind"], "EndpointSlice")
        self.assertEqual(events[0]["raw_object"]["apiVersion"], "discovery.k8s.io/v1")

    def test_watch_without_resource_version_starts_with_synthetic_added(self):
        d = self.discovery()
        ns = self.ns
        d.create_namespaced_endpoint_slice(ns, self.slice_body("s1"))
        d.create_namespaced_endpoint_slice(ns, self.slice_body("s2"))
        w = watch.Watch()
        events = self.collect(w.stream(d.list_namespaced_endpoint_slice, ns, timeout_seconds=3), 2)
        w.stop()
        self.assertEqual([(e["type"], e["object"].metadata.name) for e in events],
                         [("ADDED", "s1"), ("ADDED", "s2")])

    def test_watch_bookmarks(self):
        d = self.discovery()
        ns = self.ns
        rv = d.list_namespaced_endpoint_slice(ns).metadata.resource_version
        d.create_namespaced_endpoint_slice(ns, self.slice_body("bm"))
        w = watch.Watch()
        events = []
        for ev in w.stream(d.list_namespaced_endpoint_slice, ns, resource_version=rv,
                           allow_watch_bookmarks=True, timeout_seconds=3):
            events.append(ev)
            if ev["type"] == "BOOKMARK":
                break
        w.stop()
        self.assertEqual(events[0]["type"], "ADDED")
        bm = events[-1]
        self.assertEqual(bm["type"], "BOOKMARK")
        self.assertEqual(bm["raw_object"]["kind"], "EndpointSlice")
        self.assertEqual(bm["raw_object"]["apiVersion"], "discovery.k8s.io/v1")
        self.assertGreaterEqual(int(bm["raw_object"]["metadata"]["resourceVersion"]),
                                int(events[0]["object"].metadata.resource_version))
        # the client remembers the newest version it saw
        self.assertEqual(w.resource_version, events[0]["object"].metadata.resource_version)

    def test_watch_label_selector_transitions(self):
        v1 = self.core()
        ns = self.ns
        rv = v1.list_namespaced_pod(ns).metadata.resource_version
        pod = client.V1Pod(metadata=client.V1ObjectMeta(name="p", labels={"app": "x"}),
                           spec=client.V1PodSpec(containers=[client.V1Container(name="c",
                                                                                image="i:1")]))
        v1.create_namespaced_pod(ns, pod)
        v1.patch_namespaced_pod("p", ns, {"metadata": {"labels": {"app": "y"}}})
        v1.patch_namespaced_pod("p", ns, {"metadata": {"labels": {"extra": "1"}}})  # invisible
        v1.patch_namespaced_pod("p", ns, {"metadata": {"labels": {"app": "x"}}})
        v1.delete_namespaced_pod("p", ns)
        w = watch.Watch()
        events = self.collect(w.stream(v1.list_namespaced_pod, ns, resource_version=rv,
                                       label_selector="app=x", timeout_seconds=3), 4)
        w.stop()
        self.assertEqual([(e["type"], e["object"].metadata.labels.get("app")) for e in events],
                         [("ADDED", "x"), ("DELETED", "x"), ("ADDED", "x"), ("DELETED", "x")])

    def test_watch_from_compacted_version_is_410(self):
        d = self.discovery()
        ns = self.ns
        rv = d.list_namespaced_endpoint_slice(ns).metadata.resource_version
        d.create_namespaced_endpoint_slice(ns, self.slice_body("c1"))
        st, _, body = self.raw("POST", "/fake/compact")
        compacted = int(json.loads(body)["compactedResourceVersion"])
        w = watch.Watch()
        with self.assertRaises(ApiException) as cm:
            for _ in w.stream(d.list_namespaced_endpoint_slice, ns, resource_version=rv,
                              timeout_seconds=3):
                pass
        self.assertEqual(cm.exception.status, 410)
        self.assertIn("too old resource version", cm.exception.reason)
        # on the wire: HTTP 200 and one ERROR event carrying the Status
        st, hdrs, body = self.raw(
            "GET", "/apis/discovery.k8s.io/v1/namespaces/%s/endpointslices?watch=true&"
                   "resourceVersion=%s" % (ns, rv))
        self.assertEqual(st, 200)
        self.assertEqual(body, (
            '{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},'
            '"status":"Failure","message":"too old resource version: %s (%d)",'
            '"reason":"Expired","code":410}}\n' % (rv, compacted)).encode())

    def test_close_watches_ends_streams_cleanly(self):
        sock = self.raw_socket()
        try:
            sock.sendall(get_request("/api/v1/namespaces/%s/services?watch=1" % self.ns))
            rd = ChunkedReader(sock)
            status, _ = rd.head()
            self.assertIn(" 200 ", status)
            t0 = time.time()
            self.assertEqual(self.raw("POST", "/fake/close-watches")[0], 200)
            self.assertEqual(list(rd.chunks()), [])  # returns only after the 0-length chunk
            self.assertLess(time.time() - t0, 3)
        finally:
            sock.close()

    # ---------------------------------------------------------------- authn / authz
    def test_unauthorized_and_forbidden(self):
        with self.assertRaises(ApiException) as cm:
            self.core(token=CLIENT).list_namespaced_pod("default")
        self.assertEqual(cm.exception.status, 403)
        self.assertEqual(self.status_of(cm.exception), {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": 'pods is forbidden: User "%s" cannot list resource "pods" in API group "" '
                       'in the namespace "default"' % CLIENT_USER,
            "reason": "Forbidden", "details": {"kind": "pods"}, "code": 403})
        with self.assertRaises(ApiException) as cm:
            self.discovery(token=CLIENT).create_namespaced_endpoint_slice(
                "default", self.slice_body("nope"))
        self.assertEqual(self.status_of(cm.exception)["message"],
                         'endpointslices.discovery.k8s.io is forbidden: User "%s" cannot create '
                         'resource "endpointslices" in API group "discovery.k8s.io" in the '
                         'namespace "default"' % CLIENT_USER)
        for token in ("not-a-token", None):
            with self.assertRaises(ApiException) as cm:
                self.discovery(token=token).list_namespaced_endpoint_slice("default")
            self.assertEqual(cm.exception.status, 401)
            self.assertEqual(self.status_of(cm.exception), {
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
        # the tokens file is re-read on every request
        st, _, _ = self.raw("GET", "/version", token="rotated")
        self.assertEqual(st, 401)
        with open(os.path.join(self.tmp, "tokens.json")) as f:
            tokens = json.load(f)
        try:
            self.write_tokens(dict(tokens, rotated={"user": "r", "allow": ["get:services"]}))
            self.assertEqual(self.raw("GET", "/version", token="rotated")[0], 200)
            self.assertEqual(self.raw("GET", "/api/v1/namespaces/x/services/y",
                                      token="rotated")[0], 404)
            self.assertEqual(self.raw("GET", "/api/v1/namespaces/x/services",
                                      token="rotated")[0], 403)
        finally:
            self.write_tokens(tokens)
        self.assertEqual(self.raw("GET", "/version", token="rotated")[0], 401)
        # /fake/ needs "*"
        self.assertEqual(self.raw("GET", "/fake/stats", token=CLIENT)[0], 403)

    def test_client_certificate_user(self):
        d = self.discovery(token=None, cert=True)
        d.list_namespaced_endpoint_slice(self.ns)
        with self.assertRaises(ApiException) as cm:
            d.create_namespaced_endpoint_slice(self.ns, self.slice_body("x"))
        self.assertEqual(cm.exception.status, 403)
        self.assertIn('User "%s" cannot create' % CERT_USER, self.status_of(cm.exception)["message"])

    # ---------------------------------------------------------------- raw wire format
    def test_raw_status_json_is_exact(self):
        st, hdrs, body = self.raw("GET", "/apis/discovery.k8s.io/v1/namespaces/%s/endpointslices/x"
                                  % self.ns)
        self.assertEqual(st, 404)
        self.assertEqual(hdrs["Content-Type"], "application/json")
        self.assertEqual(body, b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":'
                               b'"Failure","message":"endpointslices.discovery.k8s.io \\"x\\" not '
                               b'found","reason":"NotFound","details":{"name":"x","group":'
                               b'"discovery.k8s.io","kind":"endpointslices"},"code":404}\n')
        st, _, body = self.raw("GET", "/no/such/path")
        self.assertEqual((st, body), (404, b'{"kind":"Status","apiVersion":"v1","metadata":{},'
                                           b'"status":"Failure","message":"the server could not '
                                           b'find the requested resource","reason":"NotFound",'
                                           b'"details":{},"code":404}\n'))
        st, _, body = self.raw("GET", "/api/v1/namespaces/%s/pods" % self.ns, token="bad")
        self.assertEqual((st, body), (401, b'{"kind":"Status","apiVersion":"v1","metadata":{},'
                                           b'"status":"Failure","message":"Unauthorized",'
                                           b'"reason":"Unauthorized","code":401}\n'))
        st, _, body = self.raw("GET", "/api/v1/namespaces/%s/services" % self.ns)
        self.assertEqual(body, b'{"kind":"ServiceList","apiVersion":"v1","metadata":'
                               b'{"resourceVersion":"%s"},"items":[]}\n'
                         % json.loads(body)["metadata"]["resourceVersion"].encode())

    def test_raw_watch_chunked_framing(self):
        d = self.discovery()
        ns = self.ns
        d.create_namespaced_endpoint_slice(ns, self.slice_body("framed"))
        sock = self.raw_socket()
        try:
            sock.sendall(get_request("/apis/discovery.k8s.io/v1/namespaces/%s/endpointslices?"
                                     "watch=true&allowWatchBookmarks=true&timeoutSeconds=1" % ns))
            rd = ChunkedReader(sock)
            status, headers = rd.head()
            self.assertEqual(status, "HTTP/1.1 200 OK")
            self.assertEqual(headers["transfer-encoding"], "chunked")
            self.assertEqual(headers["content-type"], "application/json")
            self.assertNotIn("content-length", headers)
            t0 = time.time()
            data = b"".join(rd.chunks())  # ends by the server's timeout, cleanly
            self.assertLess(time.time() - t0, 3)
            self.assertTrue(data.endswith(b"\n"))
            events = [json.loads(ln) for ln in data.split(b"\n") if ln]
            self.assertEqual(events[0]["type"], "ADDED")
            self.assertEqual(events[0]["object"]["metadata"]["name"], "framed")
            self.assertEqual(events[-1]["type"], "BOOKMARK")  # sent when the watch times out
            self.assertEqual(events[-1]["object"]["metadata"],
                             {"resourceVersion": events[-1]["object"]["metadata"]["resourceVersion"],
                              "creationTimestamp": None})
            # the connection stays usable after a cleanly finished watch (keep-alive)
            sock.sendall(get_request("/version"))
            status, headers = rd.head()
            self.assertEqual(status, "HTTP/1.1 200 OK")
            body = json.loads(rd.exactly(int(headers["content-length"])))
            self.assertEqual(body["gitVersion"], "v1.29.0-fake")
        finally:
            sock.close()

    # ---------------------------------------------------------------- faults and stats
    def add_fault(self, **spec):
        st, _, body = self.raw("POST", "/fake/faults", body=spec)
        self.assertEqual(st, 200, body)

    def test_faults(self):
        ns = self.ns
        v1 = self.core()
        self.add_fault(path_regex="/namespaces/%s/services" % ns, count=1, kind="status",
                       status=500)
        with self.assertRaises(ApiException) as cm:
            v1.list_namespaced_service(ns)
        self.assertEqual(cm.exception.status, 500)
        self.assertEqual(self.status_of(cm.exception)["reason"], "InternalError")
        v1.list_namespaced_service(ns)  # count was 1
        # (urllib3 under the Python client retries 429s that carry Retry-After: check raw)
        self.add_fault(path_regex="/namespaces/%s/services" % ns, count=1, kind="status",
                       status=429)
        st, hdrs, body = self.raw("GET", "/api/v1/namespaces/%s/services" % ns)
        self.assertEqual((st, hdrs["Retry-After"]), (429, "1"))
        self.assertEqual(json.loads(body), {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "Too many requests, please try again later.", "reason": "TooManyRequests",
            "details": {"retryAfterSeconds": 1}, "code": 429})

        self.add_fault(path_regex="/namespaces/%s/services$" % ns, count=1, kind="garbage")
        st, _, body = self.raw("GET", "/api/v1/namespaces/%s/services" % ns)
        self.assertEqual(st, 200)
        self.assertRaises(ValueError, json.loads, body)

        self.add_fault(path_regex="/namespaces/%s/services$" % ns, count=1, kind="truncate")
        # The cut body reaches the client as a short read, or (when the
        # abort's reset arrives first, as Python 3.13 on Debian 13 sees it)
        # as a broken connection.
        with self.assertRaises((http.client.IncompleteRead, ConnectionError, ssl.SSLError)):
            self.raw("GET", "/api/v1/namespaces/%s/services" % ns)

        self.core().create_namespaced_service(ns, client.V1Service(
            metadata=client.V1ObjectMeta(name="t"),
            spec=client.V1ServiceSpec(ports=[client.V1ServicePort(port=80)])))
        self.add_fault(path_regex="services\\?watch", count=1, kind="truncate")
        sock = self.raw_socket()
        try:
            sock.sendall(get_request("/api/v1/namespaces/%s/services?watch=1" % ns))
            rd = ChunkedReader(sock)
            self.assertIn(" 200 ", rd.head()[0])
            got = b""
            with self.assertRaises((EOFError, ConnectionError, ssl.SSLError)):
                for c in rd.chunks():
                    got += c
            self.assertTrue(got)
            self.assertNotIn(b"\n", got)
        finally:
            sock.close()

        st, _, body = self.raw("GET", "/fake/stats")
        stats = json.loads(body)
        self.assertGreaterEqual(stats["requests"]["list:services"], 3)
        self.assertGreaterEqual(stats["watches_started"], 1)
        self.assertIn("open_watches", stats)


class SplitWritesTest(Base):
    """A server that writes every watch event as several randomly split chunks."""
    name = "split"
    server_args = ["--watch-timeout", "8", "--bookmark-interval", "0.2", "--split-writes"]

    def test_python_client_decodes_every_event(self):
        d = self.discovery()
        ns = self.ns
        rv = d.list_namespaced_endpoint_slice(ns).metadata.resource_version
        n = 25
        for i in range(n):
            d.create_namespaced_endpoint_slice(ns, self.slice_body("s-%02d" % i,
                                                                   ips=["10.3.0.%d" % (i + 1)]))
        w = watch.Watch()
        events = self.collect_all(w.stream(d.list_namespaced_endpoint_slice, ns,
                                           resource_version=rv, timeout_seconds=5), n)
        w.stop()
        self.assertEqual([(e["type"], e["object"].metadata.name) for e in events],
                         [("ADDED", "s-%02d" % i) for i in range(n)])

    @staticmethod
    def collect_all(stream, n):
        events, deadline = [], time.time() + 6
        for ev in stream:
            events.append(ev)
            if len(events) >= n or time.time() > deadline:
                break
        return events

    def test_raw_chunks_split_inside_utf8(self):
        d = self.discovery()
        ns = self.ns
        note = "h\u00e9llo \u2713 \u65e5\u672c <&>"
        n = 12
        for i in range(n):
            d.create_namespaced_endpoint_slice(ns, self.slice_body("u-%02d" % i,
                                                                   annotations={"note": note}))
        sock = self.raw_socket()
        try:
            sock.sendall(get_request("/apis/discovery.k8s.io/v1/namespaces/%s/endpointslices?"
                                     "watch=1&timeoutSeconds=1" % ns))
            rd = ChunkedReader(sock)
            self.assertIn(" 200 ", rd.head()[0])
            chunks = list(rd.chunks())
        finally:
            sock.close()
        data = b"".join(chunks)
        lines = [ln for ln in data.split(b"\n") if ln]
        self.assertEqual(len(lines), n)
        self.assertGreater(len(chunks), n)
        self.assertIn(b"\\u003c\\u0026\\u003e", data)  # Go's HTML-safe escaping
        for i, ln in enumerate(lines):
            ev = json.loads(ln.decode("utf-8"))
            self.assertEqual(ev["object"]["metadata"]["name"], "u-%02d" % i)
            self.assertEqual(ev["object"]["metadata"]["annotations"]["note"], note)

        def decodes(c):
            try:
                c.decode("utf-8")
                return True
            except UnicodeDecodeError:
                return False

        self.assertTrue(any(not decodes(c) for c in chunks),
                        "no chunk boundary fell inside a multi-byte sequence")

    def test_server_down_and_back(self):
        sock = self.raw_socket()
        try:
            sock.sendall(get_request("/api/v1/namespaces/%s/services?watch=1" % self.ns))
            rd = ChunkedReader(sock)
            self.assertIn(" 200 ", rd.head()[0])
            st, hdrs, _ = self.raw("POST", "/fake/down?seconds=1")
            self.assertEqual(st, 200)
            self.assertEqual(hdrs["Connection"], "close")
            # the open watch is aborted: no terminating chunk
            with self.assertRaises((EOFError, ConnectionError, ssl.SSLError)):
                list(rd.chunks())
        finally:
            sock.close()
        refused = False
        deadline = time.time() + 0.8
        while time.time() < deadline and not refused:
            try:
                socket.create_connection(("127.0.0.1", self.server.port), timeout=1).close()
                time.sleep(0.02)
            except ConnectionRefusedError:
                refused = True
        self.assertTrue(refused, "the port kept accepting connections while down")
        deadline = time.time() + 5
        while True:
            try:
                st, _, _ = self.raw("GET", "/version")
                break
            except (ConnectionError, OSError):
                self.assertLess(time.time(), deadline, "the server did not come back")
                time.sleep(0.05)
        self.assertEqual(st, 200)


class HistoryAndVersionsTest(Base):
    """A server keeping only 5 events of history and serving only Istio's v1beta1."""
    name = "history"
    server_args = ["--watch-timeout", "5", "--history", "5", "--istio-versions", "v1beta1"]

    def test_history_limit_expires_old_versions(self):
        d = self.discovery()
        ns = self.ns
        rv = int(d.list_namespaced_endpoint_slice(ns).metadata.resource_version)
        for i in range(8):
            d.create_namespaced_endpoint_slice(ns, self.slice_body("h-%d" % i))
        # events rv+1 .. rv+8 happened; only the last 5 are kept, so rv+3 is the oldest usable
        st, _, body = self.raw("GET", "/apis/discovery.k8s.io/v1/namespaces/%s/endpointslices?"
                                      "watch=1&resourceVersion=%d" % (ns, rv + 2))
        ev = json.loads(body)
        self.assertEqual((st, ev["type"], ev["object"]["code"]), (200, "ERROR", 410))
        self.assertEqual(ev["object"]["message"],
                         "too old resource version: %d (%d)" % (rv + 2, rv + 3))
        w = watch.Watch()
        events = []
        for e in w.stream(d.list_namespaced_endpoint_slice, ns, resource_version=str(rv + 3),
                          timeout_seconds=3):
            events.append(e["object"].metadata.name)
            if len(events) == 5:
                break
        w.stop()
        self.assertEqual(events, ["h-3", "h-4", "h-5", "h-6", "h-7"])

    def test_only_served_istio_versions(self):
        co = self.custom()
        g = "networking.istio.io"
        st, _, body = self.raw("GET", "/apis")
        groups = {x["name"]: x for x in json.loads(body)["groups"]}
        self.assertEqual(groups[g]["preferredVersion"]["version"], "v1beta1")
        self.assertEqual([v["version"] for v in groups[g]["versions"]], ["v1beta1"])
        co.create_namespaced_custom_object(g, "v1beta1", self.ns, "destinationrules", {
            "apiVersion": g + "/v1beta1", "kind": "DestinationRule",
            "metadata": {"name": "dr"}, "spec": {"host": "greeter"}})
        for version in ("v1", "v1alpha3"):
            with self.assertRaises(ApiException) as cm:
                co.list_namespaced_custom_object(g, version, self.ns, "destinationrules")
            self.assertEqual(cm.exception.status, 404)
            self.assertEqual(self.status_of(cm.exception)["reason"], "NotFound")
        st, _, body = self.raw("POST", "/api/v1/namespaces/%s/services" % self.ns,
                               body=b'{"metadata":{"name":"x"}}',
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(st, 415)


if __name__ == "__main__":
    unittest.main(verbosity=2)
