#!/usr/bin/python3
"""A fake Kubernetes API server for lbkit's end-to-end tests (Python 3 standard library only).

What it fakes
=============
The parts of kube-apiserver that lbkit-k8s (and the official clients) talk to, over HTTPS/1.1 with
JSON bodies:

* core/v1 ``services``, ``pods`` (namespaced) and ``nodes`` (cluster scoped), each with a ``status``
  subresource; ``discovery.k8s.io/v1`` ``endpointslices``; the Istio custom resources
  ``networking.istio.io`` ``destinationrules`` and ``virtualservices`` in the versions given by
  ``--istio-versions`` (default ``v1,v1beta1,v1alpha3``; one storage, objects come back with the
  apiVersion of the URL). Namespaced resources are also listable/watchable across all namespaces
  (``/api/v1/pods``...).
* verbs get, list (``labelSelector`` equality and set-based, ``fieldSelector``, ``limit``/``continue``
  pagination with opaque continue tokens served from the list's snapshot, ``resourceVersion`` /
  ``resourceVersionMatch`` semantics), watch, create, update (PUT), patch (JSON merge patch, strategic
  merge patch with the merge keys of the served types, RFC 6902 JSON patch, and server-side apply
  given as JSON), delete and deletecollection; ``dryRun=All``.
* one global resourceVersion counter (like etcd's revision) with a bounded event history: watches
  replay from it, lists/continues are served from snapshots rebuilt from it, and versions that
  fell out of it answer 410 Expired.
* watch streams: chunked JSON events (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR), selector
  transitions turned into ADDED/DELETED like the watch cache does, bookmarks, ``timeoutSeconds``,
  ``sendInitialEvents``.
* discovery: ``/version``, ``/api``, ``/apis``, ``/apis/<group>``, ``/api/v1`` and
  ``/apis/<group>/<version>``; plus ``/healthz``, ``/livez``, ``/readyz``.
* authentication by bearer token (tokens file re-read on every request) or by verified client
  certificate (user = subject CN); authorization by a tiny RBAC-like allow list; 401/403 Status
  objects worded like kube-apiserver's.
* server-side behaviour that clients can observe: defaulting (Service clusterIP allocation,
  ports' protocol/targetPort, EndpointSlice port names and endpoint conditions, Pod defaults and
  ``status.phase=Pending``), status dropped on create and ignored on update for types with a status
  subresource (use ``.../status``), generation bumps, no-op updates that do not bump the
  resourceVersion, finalizers, graceful deletion of pods bound to a node (MODIFIED with
  deletionTimestamp, then DELETED as if the kubelet confirmed), gzip for bodies over 128 KiB, chunked
  transfer for bodies over 2 KiB (as Go's net/http does), Go-style JSON (compact, HTML-escaped,
  trailing newline, ``null`` for empty typed slices).

Reference pages followed
========================
* https://kubernetes.io/docs/reference/using-api/api-concepts/ (efficient detection of changes,
  watch bookmarks, streaming lists, retrieving large results sets in chunks, resource versions and
  their semantics for get/list/watch, 410 Gone responses, the Status kind)
* https://kubernetes.io/docs/reference/using-api/server-side-apply/ (only as far as noted below)
* https://kubernetes.io/docs/reference/access-authn-authz/authentication/ (x509 client certs,
  bearer tokens) and .../authorization/ and .../rbac/ (request verbs, the forbidden message)
* https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/status/ and
  .../list-meta/, .../object-meta/, .../label-selector/
* https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/ and
  .../field-selectors/, .../finalizers/, https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/
  (termination of pods)
* https://kubernetes.io/docs/reference/kubernetes-api/service-resources/endpoint-slice-v1/,
  .../service-v1/, .../workload-resources/pod-v1/, .../cluster-resources/node-v1/
* RFC 7386 (JSON merge patch), RFC 6902 / RFC 6901 (JSON patch / pointer), RFC 9112 (chunked).
Where the pages are silent, the wording and shapes of kube-apiserver's own code (v1.29) are copied.

How tests drive it
==================
  /usr/bin/python3 tests/support/fake_kube_apiserver.py --cert server.pem --key server.key \\
      [--client-ca ca.pem] --tokens tokens.json [--host 127.0.0.1] [--port 0] \\
      [--watch-timeout SECONDS] [--bookmark-interval SECONDS] [--split-writes] [--history N] \\
      [--istio-versions v1,v1beta1,v1alpha3] [--anonymous-auth] [--pod-deletion-delay SECONDS]

It prints ``LISTENING <port>`` on stdout once listening and one line per request on stderr.
``--tokens`` names a JSON file, re-read on every request::

  {"TOKEN": {"user": "system:serviceaccount:default:client",
             "allow": ["list:endpointslices", "watch:endpointslices", "get:services"]},
   "admin": {"user": "admin", "allow": ["*"]},
   "cert:lbkit-cert-user": {"allow": ["*"]}}

``allow`` entries are ``verb:resource`` (RBAC verbs get, list, watch, create, update, patch, delete,
deletecollection; resource as in the URL, ``pods/status`` for a subresource) or ``*``, ``verb:*``,
``*:resource``. A ``cert:CN`` entry gives the rules of a client-certificate user (a ``user`` key
there is ignored: the user is the CN); with ``--anonymous-auth`` a request without credentials is
``system:anonymous`` with the rules of the entry ``anonymous``.

Test control endpoints (not Kubernetes; they need a user whose allow list has ``*``):

* ``POST /fake/close-watches`` -> ends every open watch now, cleanly (terminating 0-length chunk).
* ``POST /fake/compact`` -> forgets the history before the current resourceVersion (watching or
  continuing from an older version then gets 410 Expired).
* ``POST /fake/down?seconds=S`` -> answers 200 (Connection: close), then closes the listening socket,
  aborts every open connection (no clean end), refuses connections for S seconds and listens again
  on the same port.
* ``POST /fake/faults`` with ``{"path_regex": RE, "count": N, "kind": "garbage|truncate|status|delay",
  "status": 500, "retry_after": 1, "delay": 0.0, "message": ...}``: the next N requests whose
  path+query matches RE (re.search) after authentication and authorization get:
  ``garbage`` -> 200 with a body that is not JSON (a watch: one garbage line, then the stream ends);
  ``truncate`` -> a list/get: a Content-Length response cut in the middle, then the connection is
  aborted; a watch: the first event cut in the middle, then the connection is aborted;
  ``status`` -> that HTTP status as a Status object (429 and 503 carry ``Retry-After``);
  ``delay`` -> only sleeps ``delay`` seconds (also honoured by the other kinds) and serves normally.
  ``GET /fake/faults`` lists pending faults, ``DELETE /fake/faults`` clears them.
* ``GET /fake/stats`` -> JSON counters: ``requests`` per ``verb:resource``, ``open_watches``,
  ``lists``, ``watches_started``, ``resource_version``, ``compacted_resource_version``...

Known departures from a real kube-apiserver: no HTTP/2, protobuf, YAML, CBOR or Table output; no
managedFields (server-side apply is a strategic merge of a JSON body); no namespaces resource
(namespaces need not exist); no controllers (EndpointSlices are not derived from Services and Pods);
validation covers only what clients commonly trip over; all lists are sorted by namespace/name.
"""

import argparse
import base64
import collections
import copy
import datetime
import email.utils
import gzip
import http
import http.server
import ipaddress
import json
import os
import random
import re
import select
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time
import traceback
import urllib.parse
import uuid

# --------------------------------------------------------------------------------------------
# Encoding helpers (Go's encoding/json: compact, HTML-escaped, trailing newline).

_HTML_ESCAPES = (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                 ("\u2028", "\\u2028"), ("\u2029", "\\u2029"))


def _py_float_fix(obj):
    # Go prints float64(1) as 1, Python as 1.0: make integral floats ints.
    if isinstance(obj, float) and obj.is_integer() and abs(obj) < 1e21:
        return int(obj)
    if isinstance(obj, dict):
        return {k: _py_float_fix(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_py_float_fix(v) for v in obj]
    return obj


def go_json_str(obj, sort_keys=False):
    s = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys,
                   allow_nan=False)
    for a, b in _HTML_ESCAPES:
        if a in s:
            s = s.replace(a, b)
    return s


def go_json(obj, sort_keys=False):
    return (go_json_str(obj, sort_keys) + "\n").encode("utf-8", "replace")


def now_rfc3339(offset_seconds=0):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=offset_seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_bool(value, name):
    if value is None:
        return None
    if value in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if value in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise ApiError(bad_request('strconv.ParseBool: parsing "%s": invalid syntax' % value))


# --------------------------------------------------------------------------------------------
# Status objects, worded like k8s.io/apimachinery/pkg/api/errors.

class ApiError(Exception):
    def __init__(self, status, headers=None):
        super().__init__(status.get("message", ""))
        self.status = status
        self.headers = headers or {}


def details(name="", group="", kind="", uid="", causes=None, retry_after=None):
    d = {}
    if name:
        d["name"] = name
    if group:
        d["group"] = group
    if kind:
        d["kind"] = kind
    if uid:
        d["uid"] = uid
    if causes:
        d["causes"] = causes
    if retry_after:
        d["retryAfterSeconds"] = retry_after
    return d


def status_obj(code, reason, message, det=None, metadata=None, success=False):
    o = {"kind": "Status", "apiVersion": "v1", "metadata": metadata or {},
         "status": "Success" if success else "Failure"}
    if message:
        o["message"] = message
    if reason:
        o["reason"] = reason
    if det is not None:
        o["details"] = det
    if code:
        o["code"] = code
    return o


def bad_request(msg):
    return status_obj(400, "BadRequest", msg)


def not_found_generic():
    return status_obj(404, "NotFound", "the server could not find the requested resource", {})


def not_found(rt, name):
    return status_obj(404, "NotFound", '%s "%s" not found' % (rt.qualified, name),
                      details(name, rt.group, rt.plural))


def already_exists(rt, name):
    return status_obj(409, "AlreadyExists", '%s "%s" already exists' % (rt.qualified, name),
                      details(name, rt.group, rt.plural))


OPTIMISTIC_LOCK_MSG = ("the object has been modified; please apply your changes to the latest "
                       "version and try again")


def conflict(rt, name, why=OPTIMISTIC_LOCK_MSG):
    return status_obj(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": %s'
                      % (rt.qualified, name, why), details(name, rt.group, rt.plural))


def internal_error(msg):
    return status_obj(500, "InternalError", "Internal error occurred: " + msg,
                      details(causes=[{"message": msg}]))


def expired(msg, metadata=None):
    return status_obj(410, "Expired", msg, None, metadata)


def too_large_rv(requested, current):
    return status_obj(504, "Timeout", "Too large resource version: %d, current: %d"
                      % (requested, current),
                      {"causes": [{"reason": "ResourceVersionTooLarge",
                                   "message": "Too large resource version"}],
                       "retryAfterSeconds": 1})


class FieldErr:
    def __init__(self, kind, field, value=None, detail=""):
        self.kind, self.field, self.value, self.detail = kind, field, value, detail

    def body(self):
        if self.kind == "FieldValueRequired":
            s = "Required value"
        elif self.kind == "FieldValueNotSupported":
            s = "Unsupported value: %s" % json.dumps(self.value)
        elif self.kind == "FieldValueForbidden":
            s = "Forbidden"
        elif self.kind == "FieldValueDuplicate":
            s = "Duplicate value: %s" % json.dumps(self.value)
        else:
            v = self.value
            s = "Invalid value: %s" % (json.dumps(v) if isinstance(v, str) else go_value(v))
        if self.detail:
            s += ": " + self.detail
        return s

    def __str__(self):
        return "%s: %s" % (self.field, self.body())


def go_value(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    return json.dumps(v) if isinstance(v, (list, dict)) else str(v)


def invalid(rt, name, errs):
    causes = [{"reason": e.kind, "message": e.body(), "field": e.field} for e in errs]
    agg = str(errs[0]) if len(errs) == 1 else "[" + ", ".join(str(e) for e in errs) + "]"
    return status_obj(422, "Invalid", '%s "%s" is invalid: %s' % (rt.group_kind, name, agg),
                      details(name, rt.group, rt.kind, causes=causes))


def forbidden_status(user, info):
    if not info.is_resource:
        msg = 'User "%s" cannot %s path "%s"' % (user, info.verb, info.path)
        return status_obj(403, "Forbidden", "forbidden: " + msg, {})
    res = info.resource + ("/" + info.subresource if info.subresource else "")
    if info.namespace:
        msg = 'User "%s" cannot %s resource "%s" in API group "%s" in the namespace "%s"' % (
            user, info.verb, res, info.group, info.namespace)
    else:
        msg = 'User "%s" cannot %s resource "%s" in API group "%s" at the cluster scope' % (
            user, info.verb, res, info.group)
    qualified = info.resource + ("." + info.group if info.group else "")
    if info.name:
        message = '%s "%s" is forbidden: %s' % (qualified, info.name, msg)
    else:
        message = "%s is forbidden: %s" % (qualified, msg)
    return status_obj(403, "Forbidden", message, details(info.name, info.group, info.resource))


UNAUTHORIZED = status_obj(401, "Unauthorized", "Unauthorized")

REASON_FOR_CODE = {
    400: ("BadRequest", "the server rejected our request for an unknown reason"),
    401: ("Unauthorized", "Unauthorized"),
    403: ("Forbidden", "forbidden"),
    404: ("NotFound", "the server could not find the requested resource"),
    405: ("MethodNotAllowed", "the server does not allow this method on the requested resource"),
    406: ("NotAcceptable", "the server was unable to respond with a content type that the client supports"),
    409: ("Conflict", "the server reported a conflict"),
    410: ("Expired", "the resource has expired"),
    413: ("RequestEntityTooLarge", "the request entity is too large"),
    415: ("UnsupportedMediaType", "the server was unable to handle the media type requested"),
    422: ("Invalid", "the server rejected our request due to an error in our request"),
    429: ("TooManyRequests", "Too many requests, please try again later."),
    500: ("InternalError", "Internal error occurred: fake fault injected"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: ("Timeout", "the server was unable to return a response in the time allotted, but may still be processing the request"),
}


# --------------------------------------------------------------------------------------------
# Resource types.

OBJECT_META_ORDER = ("name", "generateName", "namespace", "selfLink", "uid", "resourceVersion",
                     "generation", "creationTimestamp", "deletionTimestamp",
                     "deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences",
                     "finalizers", "managedFields")

NODE_INFO_EMPTY = collections.OrderedDict((k, "") for k in (
    "machineID", "systemUUID", "bootID", "kernelVersion", "osImage", "containerRuntimeVersion",
    "kubeletVersion", "kubeProxyVersion", "operatingSystem", "architecture"))

METADATA_MERGE_KEYS = {("metadata", "ownerReferences"): "uid", ("metadata", "finalizers"): None}


def _container_keys(prefix):
    keys = {}
    for c in ("containers", "initContainers", "ephemeralContainers"):
        keys[prefix + (c,)] = "name"
        keys[prefix + (c, "ports")] = "containerPort"
        keys[prefix + (c, "env")] = "name"
        keys[prefix + (c, "volumeMounts")] = "mountPath"
        keys[prefix + (c, "volumeDevices")] = "devicePath"
    keys[prefix + ("volumes",)] = "name"
    keys[prefix + ("imagePullSecrets",)] = "name"
    keys[prefix + ("hostAliases",)] = "ip"
    return keys


class ResourceType:
    def __init__(self, group, plural, kind, namespaced, versions, singular, short_names=(),
                 custom=False, status_subresource=True, return_deleted=False,
                 unconditional_update=True, status_on_create=False, field_labels=(),
                 top_fields=("spec", "status"), merge_keys=None, empty=None,
                 categories=()):
        self.group, self.plural, self.kind = group, plural, kind
        self.namespaced, self.versions = namespaced, list(versions)
        self.singular, self.short_names, self.custom = singular, list(short_names), custom
        self.status_subresource, self.return_deleted = status_subresource, return_deleted
        self.unconditional_update, self.status_on_create = unconditional_update, status_on_create
        self.field_labels = {"metadata.name": None, "metadata.namespace": None}
        self.field_labels.update(dict(field_labels))
        self.top_fields = list(top_fields)
        self.merge_keys = dict(METADATA_MERGE_KEYS)
        self.merge_keys.update(merge_keys or {})
        self.empty = empty or {}
        self.categories = list(categories)
        self.rkey = (group, plural)
        self.qualified = plural + ("." + group if group else "")
        self.group_kind = kind + ("." + group if group else "")

    def api_version(self, version):
        return version if not self.group else self.group + "/" + version

    def key(self, namespace, name):
        return "%s/%s" % (namespace, name) if self.namespaced else name


def _get_path(obj, dotted):
    cur = obj
    for p in dotted.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(p)
    return cur


def _field_str(v):
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return ",".join(x.get("ip", "") if isinstance(x, dict) else str(x) for x in v)
    return str(v)


def build_resource_types(istio_versions):
    pod_keys = _container_keys(("spec",))
    pod_keys.update({("spec", "tolerations"): None, ("status", "conditions"): "type",
                     ("status", "podIPs"): "ip", ("status", "hostIPs"): "ip",
                     ("spec", "readinessGates"): None})
    pod_keys[("spec", "tolerations")] = "__atomic__"
    pod_keys[("spec", "readinessGates")] = "__atomic__"
    types = [
        ResourceType("", "services", "Service", True, ["v1"], "service", ["svc"],
                     return_deleted=True,
                     field_labels={"spec.clusterIP": "spec.clusterIP", "spec.type": "spec.type"},
                     merge_keys={("spec", "ports"): "port", ("status", "conditions"): "type"},
                     empty={"spec": {}, "status": {"loadBalancer": {}}}, categories=["all"]),
        ResourceType("", "pods", "Pod", True, ["v1"], "pod", ["po"], return_deleted=True,
                     field_labels={"spec.nodeName": "spec.nodeName",
                                   "spec.restartPolicy": "spec.restartPolicy",
                                   "spec.schedulerName": "spec.schedulerName",
                                   "spec.serviceAccountName": "spec.serviceAccountName",
                                   "spec.hostNetwork": "spec.hostNetwork",
                                   "status.phase": "status.phase",
                                   "status.podIP": "status.podIP",
                                   "status.podIPs": "status.podIPs",
                                   "status.nominatedNodeName": "status.nominatedNodeName"},
                     merge_keys=pod_keys,
                     empty={"spec": {"containers": None}, "status": {}}, categories=["all"]),
        ResourceType("", "nodes", "Node", False, ["v1"], "node", ["no"], status_on_create=True,
                     field_labels={"spec.unschedulable": "spec.unschedulable"},
                     merge_keys={("status", "conditions"): "type",
                                 ("status", "addresses"): "type", ("spec", "podCIDRs"): None},
                     empty={"spec": {}, "status": {
                         "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
                         "nodeInfo": dict(NODE_INFO_EMPTY)}}),
        ResourceType("discovery.k8s.io", "endpointslices", "EndpointSlice", True, ["v1"],
                     "endpointslice", status_subresource=False,
                     top_fields=("addressType", "endpoints", "ports"),
                     empty={"addressType": "", "endpoints": None, "ports": None}),
    ]
    for plural, kind, singular, short in (("destinationrules", "DestinationRule",
                                           "destinationrule", ["dr"]),
                                          ("virtualservices", "VirtualService",
                                           "virtualservice", ["vs"])):
        if istio_versions:
            types.append(ResourceType("networking.istio.io", plural, kind, True, istio_versions,
                                      singular, short, custom=True, unconditional_update=False,
                                      categories=["istio-io", "networking-istio-io"]))
    return types


# --------------------------------------------------------------------------------------------
# Selectors (k8s.io/apimachinery/pkg/labels and /fields).

_QNAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
_DNS1123_SUB = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _check_label_key(key):
    name = key
    if "/" in key:
        prefix, name = key.split("/", 1)
        if not prefix or len(prefix) > 253 or not _DNS1123_SUB.match(prefix):
            return "prefix part must be a lowercase RFC 1123 subdomain"
    if not name or len(name) > 63 or not _QNAME.match(name):
        return ("name part must consist of alphanumeric characters, '-', '_' or '.', and must "
                "start and end with an alphanumeric character")
    return None


class LabelRequirement:
    def __init__(self, key, op, values):
        self.key, self.op, self.values = key, op, values

    def matches(self, labels):
        has = self.key in labels
        v = labels.get(self.key)
        op = self.op
        if op in ("=", "==", "in"):
            return has and v in self.values
        if op in ("!=", "notin"):
            return not has or v not in self.values
        if op == "exists":
            return has
        if op == "!":
            return not has
        if op in ("gt", "lt"):
            if not has:
                return False
            try:
                iv = int(v)
            except ValueError:
                return False
            return iv > self.values[0] if op == "gt" else iv < self.values[0]
        return False


_LTOK = re.compile(r"\s*(==|!=|=|!|\(|\)|,|<|>|[^\s,=!()<>]+)")


def parse_label_selector(text):
    text = text or ""
    toks = []
    pos = 0
    while pos < len(text):
        m = _LTOK.match(text, pos)
        if not m:
            if text[pos:].strip() == "":
                break
            raise ApiError(bad_request("unable to parse requirement: invalid selector %r" % text))
        toks.append(m.group(1))
        pos = m.end()
    reqs = []
    i = 0

    def err(msg):
        raise ApiError(bad_request("unable to parse requirement: " + msg))

    def value(tok):
        if tok is None or tok in ("(", ")", ",", "=", "==", "!=", "!", "<", ">"):
            return None
        return tok

    while i < len(toks):
        t = toks[i]
        if t == "!":
            if i + 1 >= len(toks) or value(toks[i + 1]) is None:
                err("found '%s', expected: identifier" % (toks[i + 1] if i + 1 < len(toks) else ""))
            key = toks[i + 1]
            i += 2
            reqs.append(LabelRequirement(key, "!", []))
        else:
            key = value(t)
            if key is None:
                err("found '%s', expected: !, identifier, or 'end of string'" % t)
            i += 1
            op = toks[i] if i < len(toks) else None
            if op is None or op == ",":
                reqs.append(LabelRequirement(key, "exists", []))
            elif op in ("=", "==", "!="):
                i += 1
                v = toks[i] if i < len(toks) else None
                if v is None or v == ",":
                    reqs.append(LabelRequirement(key, op, [""]))
                else:
                    if value(v) is None:
                        err("found '%s', expected: identifier" % v)
                    reqs.append(LabelRequirement(key, op, [v]))
                    i += 1
            elif op in ("in", "notin"):
                i += 1
                if i >= len(toks) or toks[i] != "(":
                    err("found '%s', expected: '('" % (toks[i] if i < len(toks) else ""))
                i += 1
                vals = []
                expect_value = True
                while True:
                    if i >= len(toks):
                        err("found '', expected: ')'")
                    tk = toks[i]
                    if tk == ")":
                        if expect_value and vals:
                            vals.append("")
                        i += 1
                        break
                    if tk == ",":
                        if expect_value:
                            vals.append("")
                        expect_value = True
                        i += 1
                        continue
                    if value(tk) is None or not expect_value:
                        err("found '%s', expected: ',', ')' or identifier" % tk)
                    vals.append(tk)
                    expect_value = False
                    i += 1
                if not vals:
                    err("for 'in', 'notin' operators, values set can't be empty")
                reqs.append(LabelRequirement(key, op, vals))
            elif op in ("<", ">"):
                i += 1
                v = toks[i] if i < len(toks) else ""
                try:
                    n = int(v)
                except ValueError:
                    err("for 'Gt', 'Lt' operators, the value must be an integer")
                reqs.append(LabelRequirement(key, "gt" if op == ">" else "lt", [n]))
                i += 1
            else:
                err("found '%s', expected: '=', '!=', '==', 'in', notin'" % op)
        kerr = _check_label_key(key)
        if kerr:
            err('key: Invalid value: "%s": %s' % (key, kerr))
        for v in reqs[-1].values:
            if isinstance(v, str) and (len(v) > 63 or not _LABEL_VALUE.match(v)):
                err('values[0][%s]: Invalid value: "%s": a valid label must be an empty string '
                    "or consist of alphanumeric characters, '-', '_' or '.', and must start "
                    "and end with an alphanumeric character" % (key, v))
        if i < len(toks):
            if toks[i] != ",":
                err("found '%s', expected: ',' or 'end of string'" % toks[i])
            i += 1
            if i >= len(toks):
                err("found '', expected: identifier after ','")
    return reqs


def labels_match(reqs, obj):
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(r.matches(labels) for r in reqs)


def parse_field_selector(rt, text):
    reqs = []
    if not text:
        return reqs
    parts, cur, esc = [], "", False
    for ch in text:
        if esc:
            cur += "\\" + ch
            esc = False
        elif ch == "\\":
            esc = True
        elif ch == ",":
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    for p in parts:
        p = p.strip()
        if not p:
            continue
        m = re.match(r"^(.*?)(!=|==|=)(.*)$", p)
        if not m:
            raise ApiError(bad_request("invalid selector: '%s'; can't understand '%s'" % (text, p)))
        field, op, val = m.group(1), m.group(2), m.group(3)
        val = re.sub(r"\\(.)", r"\1", val)
        if field not in rt.field_labels:
            raise ApiError(bad_request('field label not supported: %s' % field))
        reqs.append((field, op != "!=", val))
    return reqs


def fields_match(rt, reqs, obj):
    for field, eq, val in reqs:
        if field == "metadata.name":
            got = (obj.get("metadata") or {}).get("name", "")
        elif field == "metadata.namespace":
            got = (obj.get("metadata") or {}).get("namespace", "")
        else:
            got = _field_str(_get_path(obj, rt.field_labels[field]))
        if (got == val) != eq:
            return False
    return True


# --------------------------------------------------------------------------------------------
# Patches.

def merge_patch(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


def _strip_directives(v):
    if isinstance(v, dict):
        return {k: _strip_directives(x) for k, x in v.items()
                if not (k.startswith("$setElementOrder/") or k.startswith("$deleteFromPrimitiveList/")
                        or k in ("$patch", "$retainKeys"))}
    if isinstance(v, list):
        return [_strip_directives(x) for x in v]
    return v


def strategic_merge(target, patch, keys, path=()):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return _strip_directives(patch)
    if directive == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if k.startswith("$setElementOrder/") or k in ("$patch", "$retainKeys"):
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            name = k.split("/", 1)[1]
            if isinstance(result.get(name), list) and isinstance(v, list):
                result[name] = [x for x in result[name] if x not in v]
            continue
        if v is None:
            result.pop(k, None)
            continue
        sub = path + (k,)
        if isinstance(v, list) and sub in keys and keys[sub] != "__atomic__":
            result[k] = _merge_list(result.get(k), v, keys[sub], sub, keys)
        elif isinstance(v, dict):
            r = strategic_merge(result.get(k), v, keys, sub)
            if r is None:
                result.pop(k, None)
            else:
                result[k] = r
        else:
            result[k] = _strip_directives(copy.deepcopy(v))
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(cur, patch_list, mkey, path, keys):
    cur = [copy.deepcopy(x) for x in (cur if isinstance(cur, list) else [])]
    if any(isinstance(e, dict) and e.get("$patch") == "replace" for e in patch_list):
        return [_strip_directives(e) for e in patch_list
                if not (isinstance(e, dict) and e.get("$patch") == "replace")]
    if mkey is None:
        for x in patch_list:
            if x not in cur:
                cur.append(copy.deepcopy(x))
        return cur
    for e in patch_list:
        if not isinstance(e, dict):
            cur.append(copy.deepcopy(e))
            continue
        kv = e.get(mkey)
        idx = next((i for i, c in enumerate(cur) if isinstance(c, dict) and c.get(mkey) == kv),
                   None)
        if e.get("$patch") == "delete":
            if idx is not None:
                del cur[idx]
            continue
        if idx is None:
            cur.append(_strip_directives(copy.deepcopy(e)))
        else:
            cur[idx] = strategic_merge(cur[idx], e, keys, path)
    return cur


class PatchError(Exception):
    pass


def _ptr(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError("add operation does not apply: doc is missing path: %s" % path)
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc, parts, path):
    cur = doc
    for p in parts:
        if isinstance(cur, dict) and p in cur:
            cur = cur[p]
        elif isinstance(cur, list) and p.isdigit() and int(p) < len(cur):
            cur = cur[int(p)]
        else:
            raise PatchError("doc is missing path: %s" % path)
    return cur


def json_patch(doc, ops):
    if not isinstance(ops, list):
        raise ApiError(bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch"))
    doc = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op:
            raise PatchError("unexpected kind: unknown")
        kind = op["op"]
        path = op.get("path", "")
        parts = _ptr(path)

        def container():
            if not parts:
                raise PatchError("%s operation does not apply: doc is missing path: %s"
                                 % (kind, path))
            return _walk(doc, parts[:-1], path), parts[-1]

        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError("%s operation does not apply: missing value" % kind)
        if kind == "test":
            if _walk(doc, parts, path) != op["value"]:
                raise PatchError("testing value %s failed: test failed" % path)
        elif kind in ("remove", "replace"):
            parent, last = container()
            if isinstance(parent, dict):
                if last not in parent:
                    raise PatchError("%s operation does not apply: doc is missing key: %s"
                                     % (kind, path))
                if kind == "remove":
                    del parent[last]
                else:
                    parent[last] = copy.deepcopy(op["value"])
            elif isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
                if kind == "remove":
                    del parent[int(last)]
                else:
                    parent[int(last)] = copy.deepcopy(op["value"])
            else:
                raise PatchError("%s operation does not apply: doc is missing path: %s"
                                 % (kind, path))
        elif kind in ("add", "move", "copy"):
            if kind == "add":
                value = copy.deepcopy(op["value"])
            else:
                src = _ptr(op.get("from", ""))
                value = copy.deepcopy(_walk(doc, src, op.get("from", "")))
                if kind == "move":
                    sp = _walk(doc, src[:-1], op.get("from"))
                    if isinstance(sp, dict):
                        del sp[src[-1]]
                    else:
                        del sp[int(src[-1])]
            if not parts:
                doc = value
                continue
            parent, last = container()
            if isinstance(parent, dict):
                parent[last] = value
            elif isinstance(parent, list):
                if last == "-":
                    parent.append(value)
                elif last.isdigit() and int(last) <= len(parent):
                    parent.insert(int(last), value)
                else:
                    raise PatchError("add operation does not apply: doc is missing path: %s"
                                     % path)
            else:
                raise PatchError("add operation does not apply: doc is missing path: %s" % path)
        else:
            raise PatchError("Unexpected kind: %s" % kind)
    return doc


# --------------------------------------------------------------------------------------------
# Per-type preparation (defaulting, status handling) and validation.

def _ordered(d, order):
    """Reorders the keys of d like the fields of the Go struct they come from."""
    if not isinstance(d, dict):
        return d
    out = {k: d[k] for k in order if k in d}
    out.update((k, v) for k, v in d.items() if k not in out)
    return out


SERVICE_PORT_ORDER = ("name", "protocol", "appProtocol", "port", "targetPort", "nodePort")
ENDPOINT_ORDER = ("addresses", "conditions", "hostname", "targetRef", "deprecatedTopology",
                  "nodeName", "zone", "hints")
ENDPOINT_PORT_ORDER = ("name", "protocol", "port", "appProtocol")
CONTAINER_PORT_ORDER = ("name", "hostPort", "containerPort", "protocol", "hostIP")


def _qos(pod):
    containers = (pod.get("spec") or {}).get("containers") or []
    any_set, guaranteed = False, bool(containers)
    for c in containers:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        if req or lim:
            any_set = True
        for r in ("cpu", "memory"):
            if r not in lim or (r in req and req[r] != lim[r]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


class Defaulter:
    def __init__(self):
        self._next_ip = 10
        self.lock = threading.Lock()

    def alloc_ip(self, used):
        with self.lock:
            while True:
                n = self._next_ip
                self._next_ip += 1
                ip = str(ipaddress.ip_address("10.96.0.0") + n)
                if ip not in used:
                    return ip

    def apply(self, rt, obj, used_ips):
        kind = rt.kind
        if kind == "Service":
            spec = obj.get("spec")
            if not isinstance(spec, dict):
                obj["spec"] = spec = {}
            spec.setdefault("type", "ClusterIP")
            if spec["type"] != "ExternalName":
                spec.setdefault("sessionAffinity", "None")
                if not spec.get("clusterIP"):
                    ips = spec.get("clusterIPs") or []
                    spec["clusterIP"] = ips[0] if ips else self.alloc_ip(used_ips)
                spec.setdefault("clusterIPs", [spec["clusterIP"]])
                if spec["clusterIP"] != "None":
                    spec.setdefault("ipFamilies", ["IPv4"])
                    spec.setdefault("ipFamilyPolicy", "SingleStack")
                else:
                    spec.setdefault("ipFamilies", ["IPv4"])
                    spec.setdefault("ipFamilyPolicy", "SingleStack")
                spec.setdefault("internalTrafficPolicy", "Cluster")
            for p in spec.get("ports") or []:
                if isinstance(p, dict):
                    p.setdefault("protocol", "TCP")
                    if "targetPort" not in p and "port" in p and spec["type"] != "ExternalName":
                        p["targetPort"] = p["port"]
            if isinstance(spec.get("ports"), list):
                spec["ports"] = [_ordered(p, SERVICE_PORT_ORDER) for p in spec["ports"]]
            obj.setdefault("status", {"loadBalancer": {}})
        elif kind == "Pod":
            spec = obj.get("spec")
            if not isinstance(spec, dict):
                obj["spec"] = spec = {}
            spec.setdefault("containers", None)
            for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
                if not isinstance(c, dict):
                    continue
                c.setdefault("resources", {})
                c.setdefault("terminationMessagePath", "/dev/termination-log")
                c.setdefault("terminationMessagePolicy", "File")
                image = c.get("image") or ""
                tagless = ":" not in image.rsplit("/", 1)[-1] and "@" not in image
                c.setdefault("imagePullPolicy",
                             "Always" if tagless or image.endswith(":latest") else "IfNotPresent")
                for p in c.get("ports") or []:
                    if isinstance(p, dict):
                        p.setdefault("protocol", "TCP")
                if isinstance(c.get("ports"), list):
                    c["ports"] = [_ordered(p, CONTAINER_PORT_ORDER) for p in c["ports"]]
            spec.setdefault("restartPolicy", "Always")
            spec.setdefault("terminationGracePeriodSeconds", 30)
            spec.setdefault("dnsPolicy", "ClusterFirst")
            spec.setdefault("serviceAccountName", "default")
            spec.setdefault("serviceAccount", spec["serviceAccountName"])
            spec.setdefault("securityContext", {})
            spec.setdefault("schedulerName", "default-scheduler")
            spec.setdefault("priority", 0)
            spec.setdefault("enableServiceLinks", True)
            spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
            obj.setdefault("status", {})
        elif kind == "EndpointSlice":
            obj.setdefault("addressType", obj.get("addressType", ""))
            eps = obj.get("endpoints")
            obj["endpoints"] = eps if eps is not None else None
            if isinstance(eps, list):
                for e in eps:
                    if isinstance(e, dict):
                        e.setdefault("addresses", None)
                        if not isinstance(e.get("conditions"), dict):
                            e["conditions"] = {}
                obj["endpoints"] = [_ordered(e, ENDPOINT_ORDER) for e in eps]
            ports = obj.get("ports")
            obj["ports"] = ports if ports is not None else None
            if isinstance(ports, list):
                for p in ports:
                    if isinstance(p, dict):
                        p.setdefault("name", "")
                        p.setdefault("protocol", "TCP")
                obj["ports"] = [_ordered(p, ENDPOINT_PORT_ORDER) for p in ports]
        elif kind == "Node":
            obj.setdefault("spec", {})
            status = obj.get("status")
            if not isinstance(status, dict):
                obj["status"] = status = {}
            status.setdefault("daemonEndpoints", {"kubeletEndpoint": {"Port": 0}})
            info = status.get("nodeInfo") if isinstance(status.get("nodeInfo"), dict) else {}
            status["nodeInfo"] = dict(NODE_INFO_EMPTY, **info)


def validate_name(rt, name, errs):
    if rt.kind == "Service":
        if len(name) > 63 or not _DNS1035.match(name):
            errs.append(FieldErr("FieldValueInvalid", "metadata.name", name,
                                 "a DNS-1035 label must consist of lower case alphanumeric "
                                 "characters or '-', start with an alphabetic character, and end "
                                 "with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
                                 "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"))
    elif len(name) > 253 or not _DNS1123_SUB.match(name):
        errs.append(FieldErr("FieldValueInvalid", "metadata.name", name,
                             "a lowercase RFC 1123 subdomain must consist of lower case "
                             "alphanumeric characters, '-' or '.', and must start and end with an "
                             "alphanumeric character (e.g. 'example.com', regex used for "
                             "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*"
                             "[a-z0-9])?)*')"))


def validate(rt, obj):
    errs = []
    meta = obj.get("metadata") or {}
    name = meta.get("name") or ""
    if not name:
        errs.append(FieldErr("FieldValueRequired", "metadata.name", None,
                             "name or generateName is required"))
    else:
        validate_name(rt, name, errs)
    for fld in ("labels", "annotations"):
        m = meta.get(fld)
        if m is not None and not (isinstance(m, dict) and all(isinstance(v, str) for v in m.values())):
            errs.append(FieldErr("FieldValueInvalid", "metadata." + fld, m, "must be a map of strings"))
    labels = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
    for k, v in labels.items():
        kerr = _check_label_key(k)
        if kerr:
            errs.append(FieldErr("FieldValueInvalid", "metadata.labels", k, kerr))
        if isinstance(v, str) and (len(v) > 63 or not _LABEL_VALUE.match(v)):
            errs.append(FieldErr("FieldValueInvalid", "metadata.labels", v,
                                 "a valid label must be an empty string or consist of alphanumeric "
                                 "characters, '-', '_' or '.', and must start and end with an "
                                 "alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
                                 "'12345', regex used for validation is "
                                 "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"))
    if rt.kind == "Pod":
        cs = (obj.get("spec") or {}).get("containers")
        if not cs:
            errs.append(FieldErr("FieldValueRequired", "spec.containers"))
        else:
            for i, c in enumerate(cs):
                if not isinstance(c, dict) or not c.get("name"):
                    errs.append(FieldErr("FieldValueRequired", "spec.containers[%d].name" % i))
                if not isinstance(c, dict) or not c.get("image"):
                    errs.append(FieldErr("FieldValueRequired", "spec.containers[%d].image" % i))
    elif rt.kind == "Service":
        spec = obj.get("spec") or {}
        t = spec.get("type", "ClusterIP")
        if t not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
            errs.append(FieldErr("FieldValueNotSupported", "spec.type", t,
                                 'supported values: "ClusterIP", "ExternalName", "LoadBalancer", '
                                 '"NodePort"'))
        ports = spec.get("ports") or []
        if not ports and t != "ExternalName" and spec.get("clusterIP") != "None":
            errs.append(FieldErr("FieldValueRequired", "spec.ports"))
        for i, p in enumerate(ports):
            port = p.get("port") if isinstance(p, dict) else None
            if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
                errs.append(FieldErr("FieldValueInvalid", "spec.ports[%d].port" % i, port,
                                     "must be between 1 and 65535, inclusive"))
        if len(ports) > 1:
            for i, p in enumerate(ports):
                if isinstance(p, dict) and not p.get("name"):
                    errs.append(FieldErr("FieldValueRequired", "spec.ports[%d].name" % i))
    elif rt.kind == "EndpointSlice":
        at = obj.get("addressType")
        if not at:
            errs.append(FieldErr("FieldValueRequired", "addressType"))
        elif at not in ("IPv4", "IPv6", "FQDN"):
            errs.append(FieldErr("FieldValueNotSupported", "addressType", at,
                                 'supported values: "FQDN", "IPv4", "IPv6"'))
        for i, e in enumerate(obj.get("endpoints") or []):
            addrs = e.get("addresses") if isinstance(e, dict) else None
            if not addrs:
                errs.append(FieldErr("FieldValueRequired", "endpoints[%d].addresses" % i))
                continue
            for j, a in enumerate(addrs):
                ok = isinstance(a, str)
                if ok and at in ("IPv4", "IPv6"):
                    try:
                        ok = ipaddress.ip_address(a).version == (4 if at == "IPv4" else 6)
                    except ValueError:
                        ok = False
                if not ok:
                    errs.append(FieldErr("FieldValueInvalid", "endpoints[%d].addresses[%d]" % (i, j),
                                         a, "must be a valid %s address" % at))
        for i, p in enumerate(obj.get("ports") or []):
            port = p.get("port") if isinstance(p, dict) else None
            if port is not None and (not isinstance(port, int) or not 1 <= port <= 65535):
                errs.append(FieldErr("FieldValueInvalid", "ports[%d].port" % i, port,
                                     "must be between 1 and 65535, inclusive"))
    return errs


def order_object(rt, obj, version, include_type=True):
    """Returns obj as the server would serialize it (typed field order or unstructured)."""
    meta = obj.get("metadata") or {}
    if rt.custom:
        o = dict(obj)
        o["apiVersion"] = rt.api_version(version)
        o["kind"] = rt.kind
        if not include_type:
            pass
        return o
    out = {}
    if include_type:
        out["kind"] = rt.kind
        out["apiVersion"] = rt.api_version(version)
    m = {}
    for k in OBJECT_META_ORDER:
        if k in meta:
            m[k] = meta[k]
    out["metadata"] = m
    for k in rt.top_fields:
        if k in obj:
            out[k] = obj[k]
    return out


# --------------------------------------------------------------------------------------------
# Storage, history and watchers.

Event = collections.namedtuple("Event", "rv rkey type obj prev")


def with_rv(obj, rv):
    o = dict(obj)
    o["metadata"] = dict(obj.get("metadata") or {}, resourceVersion=str(rv))
    return o


class Watcher:
    def __init__(self, rt, namespace, lsel, fsel, version, allow_bookmarks):
        self.rt, self.namespace, self.lsel, self.fsel = rt, namespace, lsel, fsel
        self.version, self.allow_bookmarks = version, allow_bookmarks
        self.queue = []
        self.closed = False   # end cleanly
        self.aborted = False  # connection torn down

    def matches(self, obj):
        if obj is None:
            return False
        if self.namespace and (obj.get("metadata") or {}).get("namespace") != self.namespace:
            return False
        return labels_match(self.lsel, obj) and fields_match(self.rt, self.fsel, obj)

    def convert(self, ev):
        if ev.type == "ADDED":
            return ("ADDED", ev.obj) if self.matches(ev.obj) else None
        if ev.type == "DELETED":
            return ("DELETED", ev.obj) if self.matches(ev.obj) else None
        cur, prev = self.matches(ev.obj), self.matches(ev.prev)
        if cur and prev:
            return ("MODIFIED", ev.obj)
        if cur:
            return ("ADDED", ev.obj)
        if prev:
            return ("DELETED", with_rv(ev.prev, ev.rv))
        return None

    def offer(self, ev):
        c = self.convert(ev)
        if c:
            self.queue.append(c)


class Store:
    def __init__(self, history_limit, start_rv=1000):
        self.cond = threading.Condition()
        self.rv = start_rv
        self.compact_rv = start_rv
        self.objects = collections.defaultdict(dict)
        self.history = collections.deque()
        self.history_limit = history_limit
        self.watchers = set()

    def commit(self, rt, etype, obj, prev):
        """Records an event at self.rv (already bumped); must hold self.cond."""
        ev = Event(self.rv, rt.rkey, etype, obj, prev)
        self.history.append(ev)
        while len(self.history) > self.history_limit:
            self.compact_rv = self.history.popleft().rv
        for w in self.watchers:
            if w.rt.rkey == rt.rkey:
                w.offer(ev)
        self.cond.notify_all()

    def compact(self):
        with self.cond:
            self.history.clear()
            self.compact_rv = self.rv
            return self.rv

    def snapshot(self, rt, rv):
        objs = dict(self.objects[rt.rkey])
        for ev in reversed(self.history):
            if ev.rv <= rv:
                break
            if ev.rkey != rt.rkey:
                continue
            m = ev.obj["metadata"]
            k = rt.key(m.get("namespace", ""), m["name"])
            if ev.type == "ADDED":
                objs.pop(k, None)
            else:
                objs[k] = ev.prev
        return objs

    def used_cluster_ips(self):
        ips = set()
        for o in self.objects[("", "services")].values():
            ips.add((o.get("spec") or {}).get("clusterIP"))
        return ips


# --------------------------------------------------------------------------------------------
# Authentication / authorization, faults and stats.

class Auth:
    def __init__(self, path, anonymous):
        self.path, self.anonymous = path, anonymous
        self.last_good = {}
        self.lock = threading.Lock()

    def load(self):
        for _ in range(5):
            try:
                with open(self.path, "rb") as f:
                    data = json.loads(f.read().decode("utf-8"))
                if isinstance(data, dict):
                    with self.lock:
                        self.last_good = data
                    return data
            except (OSError, ValueError):
                pass
            time.sleep(0.01)
        with self.lock:
            return self.last_good

    @staticmethod
    def allowed(entry, verb, resource):
        for rule in (entry or {}).get("allow") or []:
            if rule == "*":
                return True
            v, _, r = rule.partition(":")
            if v in ("*", verb) and r in ("*", resource):
                return True
        return False

    @staticmethod
    def is_admin(entry):
        return "*" in ((entry or {}).get("allow") or [])


class Faults:
    def __init__(self):
        self.lock = threading.Lock()
        self.items = []

    def add(self, spec):
        if not isinstance(spec, dict) or "path_regex" not in spec:
            raise ApiError(bad_request("fault needs path_regex"))
        spec = dict(spec)
        spec.setdefault("count", 1)
        spec.setdefault("kind", "status")
        spec.setdefault("status", 500)
        try:
            spec["_re"] = re.compile(spec["path_regex"])
        except re.error as e:
            raise ApiError(bad_request("bad path_regex: %s" % e))
        if spec["kind"] not in ("garbage", "truncate", "status", "delay"):
            raise ApiError(bad_request("unknown fault kind %r" % spec["kind"]))
        with self.lock:
            self.items.append(spec)

    def take(self, target):
        with self.lock:
            for f in self.items:
                if f["count"] > 0 and f["_re"].search(target):
                    f["count"] -= 1
                    if f["count"] <= 0:
                        self.items.remove(f)
                    return f
        return None

    def describe(self):
        with self.lock:
            return [{k: v for k, v in f.items() if not k.startswith("_")} for f in self.items]

    def clear(self):
        with self.lock:
            self.items = []


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = collections.Counter()
        self.open_watches = 0
        self.lists = 0
        self.watches_started = 0
        self.total = 0

    def count(self, key):
        with self.lock:
            self.requests[key] += 1
            self.total += 1

    def add(self, field, delta=1):
        with self.lock:
            setattr(self, field, getattr(self, field) + delta)


# --------------------------------------------------------------------------------------------
# Request info (k8s.io/apiserver/pkg/endpoints/request.RequestInfoFactory).

class RequestInfo:
    def __init__(self):
        self.is_resource = False
        self.path = ""
        self.verb = ""
        self.group = ""
        self.version = ""
        self.namespace = ""
        self.resource = ""
        self.name = ""
        self.subresource = ""
        self.watch_prefix = False


def parse_request_info(method, path, query):
    info = RequestInfo()
    info.path = path
    info.verb = method.lower()
    parts = [p for p in path.strip("/").split("/")] if path.strip("/") else []
    if not parts or parts[0] not in ("api", "apis"):
        return info
    if parts[0] == "api":
        if len(parts) < 2:
            return info
        info.version, rest = parts[1], parts[2:]
    else:
        if len(parts) < 3:
            return info
        info.group, info.version, rest = parts[1], parts[2], parts[3:]
    info.is_resource = True
    verb = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch",
            "DELETE": "delete"}.get(method, method.lower())
    if rest and rest[0] == "watch":
        info.watch_prefix = True
        verb = "watch"
        rest = rest[1:]
    if rest and rest[0] == "namespaces" and len(rest) > 1:
        # /namespaces/{ns}/{resource}...; /namespaces/{ns} alone is the namespace object itself
        info.namespace = rest[1]
        if len(rest) > 2:
            rest = rest[2:]
    if rest:
        info.resource = rest[0]
    if len(rest) > 1:
        info.name = rest[1]
    if len(rest) > 2:
        info.subresource = rest[2]
    if verb == "get" and not info.name:
        verb = "list"
        w = query.get("watch")
        if w in ("1", "t", "T", "true", "TRUE", "True"):
            verb = "watch"
    if verb == "delete" and not info.name:
        verb = "deletecollection"
    info.verb = verb
    return info


# --------------------------------------------------------------------------------------------
# The API server.

class FakeApiServer:
    def __init__(self, args):
        self.args = args
        istio_versions = [v for v in (args.istio_versions or "").split(",") if v]
        self.types = build_resource_types(istio_versions)
        self.by_path = {}  # (group, version, plural) -> rt
        self.groups = collections.OrderedDict()  # group -> [versions]
        for rt in self.types:
            for v in rt.versions:
                self.by_path[(rt.group, v, rt.plural)] = rt
                self.groups.setdefault(rt.group, [])
                if v not in self.groups[rt.group]:
                    self.groups[rt.group].append(v)
        self.store = Store(args.history)
        self.auth = Auth(args.tokens, args.anonymous_auth)
        self.faults = Faults()
        self.stats = Stats()
        self.defaulter = Defaulter()
        self.watch_timeout = args.watch_timeout
        self.bookmark_interval = args.bookmark_interval
        self.split_writes = args.split_writes
        self.conns_lock = threading.Lock()
        self.conns = set()
        self.httpd = None
        self.up_event = threading.Event()
        self.down_lock = threading.Lock()

    # ---- discovery documents
    def version_doc(self):
        return {"major": "1", "minor": "29", "gitVersion": "v1.29.0-fake",
                "gitCommit": "0000000000000000000000000000000000000000",
                "gitTreeState": "clean", "buildDate": "2023-12-13T08:45:03Z",
                "goVersion": "go1.21.5", "compiler": "gc", "platform": "linux/amd64"}

    def server_address(self):
        return [{"clientCIDR": "0.0.0.0/0",
                 "serverAddress": "%s:%d" % (self.args.host, self.port)}]

    def api_group(self, group):
        versions = [{"groupVersion": group + "/" + v, "version": v} for v in self.groups[group]]
        return {"name": group, "versions": versions, "preferredVersion": versions[0]}

    def resource_list(self, group, version):
        res = []
        for rt in self.types:
            if rt.group != group or version not in rt.versions:
                continue
            r = {"name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced,
                 "kind": rt.kind,
                 "verbs": ["create", "delete", "deletecollection", "get", "list", "patch",
                           "update", "watch"]}
            if rt.short_names:
                r["shortNames"] = rt.short_names
            if rt.categories:
                r["categories"] = rt.categories
            if not rt.custom:
                r["storageVersionHash"] = base64.b64encode(
                    ("%s/%s/%s" % (group, version, rt.kind)).encode())[:11].decode()
            res.append(r)
            if rt.status_subresource:
                res.append({"name": rt.plural + "/status", "singularName": "",
                            "namespaced": rt.namespaced, "kind": rt.kind,
                            "verbs": ["get", "patch", "update"]})
        doc = {"kind": "APIResourceList"}
        if group:
            doc["apiVersion"] = "v1"
        doc["groupVersion"] = (group + "/" + version) if group else version
        doc["resources"] = res
        return doc


class ClientGone(Exception):
    pass


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.lock = threading.Lock()
        self.closed = False
        self.exempt = False

    def abort(self):
        with self.lock:
            if self.closed or self.exempt:
                return
            try:
                fd = self.sock.fileno()
                if fd < 0:
                    return
                s2 = socket.socket(fileno=os.dup(fd))
                try:
                    s2.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    s2.shutdown(socket.SHUT_RDWR)
                finally:
                    s2.close()
            except OSError:
                pass

    def close(self):
        with self.lock:
            if self.closed:
                return
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass


class HTTPServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, handler, api, ssl_ctx):
        self.api = api
        self.ssl_ctx = ssl_ctx
        super().__init__(addr, handler)

    def finish_request(self, request, client_address):
        request.settimeout(10)
        try:
            tls = self.ssl_ctx.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError) as e:
            log("TLS handshake from %s:%d failed: %s" % (client_address[0], client_address[1], e))
            try:
                request.close()
            except OSError:
                pass
            return
        tls.settimeout(None)
        conn = Conn(tls)
        with self.api.conns_lock:
            self.api.conns.add(conn)
        try:
            self.RequestHandlerClass(tls, client_address, self, conn)
        except (OSError, ssl.SSLError, ClientGone):
            pass
        finally:
            with self.api.conns_lock:
                self.api.conns.discard(conn)
            conn.close()

    def shutdown_request(self, request):
        try:
            request.close()
        except OSError:
            pass

    def handle_error(self, request, client_address):
        log("error serving %s: %s" % (client_address, traceback.format_exc().strip().splitlines()[-1]))


_log_lock = threading.Lock()


def log(msg):
    with _log_lock:
        try:
            sys.stderr.write("%s %s\n" % (time.strftime("%H:%M:%S"), msg))
            sys.stderr.flush()
        except (OSError, ValueError):
            pass


FLOWSCHEMA_UID = "5a5e0c1b-1f8d-4f0e-9c1b-fa4e0b7d1c01"
PRIORITYLEVEL_UID = "5a5e0c1b-1f8d-4f0e-9c1b-fa4e0b7d1c02"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "fake-kube-apiserver"
    sys_version = ""

    def __init__(self, request, client_address, server, conn):
        self.conn = conn
        self.api = server.api
        super().__init__(request, client_address, server)

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        self.dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    # ---- low-level writing
    def _headers(self, code, headers):
        phrase = http.HTTPStatus(code).phrase if code in http.HTTPStatus._value2member_map_ else ""
        lines = ["HTTP/1.1 %d %s" % (code, phrase)]
        hdrs = {"Audit-Id": self.audit_id, "Cache-Control": "no-cache, private",
                "Date": email.utils.formatdate(usegmt=True),
                "X-Kubernetes-Pf-Flowschema-Uid": FLOWSCHEMA_UID,
                "X-Kubernetes-Pf-Prioritylevel-Uid": PRIORITYLEVEL_UID}
        hdrs.update(headers)
        if self.close_connection:
            hdrs["Connection"] = "close"
        for k in sorted(hdrs):
            if hdrs[k] is not None:
                lines.append("%s: %s" % (k, hdrs[k]))
        for w in self.warnings:
            lines.append('Warning: 299 - "%s"' % w.replace('"', '\\"'))
        self.response_started = True
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def send_bytes(self, code, body, ctype="application/json", headers=None, force_length=False):
        headers = dict(headers or {})
        headers["Content-Type"] = ctype
        if (len(body) > 128 * 1024 and not force_length
                and "gzip" in (self.headers.get("Accept-Encoding") or "")):
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
            headers["Vary"] = "Accept-Encoding"
        chunked = len(body) > 2048 and not force_length and self.request_version == "HTTP/1.1"
        if chunked:
            headers["Transfer-Encoding"] = "chunked"
        else:
            headers["Content-Length"] = str(len(body))
        self.status_code = code
        self._headers(code, headers)
        if self.command == "HEAD":
            return
        if chunked:
            self.wfile.write(b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
        else:
            self.wfile.write(body)

    def send_json(self, code, obj, sort_keys=False, headers=None):
        self.send_bytes(code, go_json(obj, sort_keys), headers=headers)

    def send_status(self, st, headers=None):
        self.send_json(st.get("code") or 500, st, headers=headers)

    # ---- request plumbing
    def read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            out = b""
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ClientGone()
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline(65537)
                if len(out) > 3 * 1024 * 1024:
                    raise ApiError(status_obj(413, "RequestEntityTooLarge",
                                              "the request is too large"))
        n = int(self.headers.get("Content-Length") or 0)
        if n > 3 * 1024 * 1024:
            self.close_connection = True
            raise ApiError(status_obj(413, "RequestEntityTooLarge", "the request is too large"))
        return self.rfile.read(n) if n else b""

    def dispatch(self):
        self.audit_id = str(uuid.uuid4())
        self.response_started = False
        self.status_code = 0
        self.warnings = []
        self.user = None
        self.truncate_body = False
        self.truncate_next_event = False
        self.applying = False
        start = time.time()
        try:
            self.body = self.read_body()
            self.handle_api()
        except ApiError as e:
            if not self.response_started:
                self.send_status(e.status, e.headers)
        except ClientGone:
            self.close_connection = True
        except (ConnectionError, ssl.SSLError, BrokenPipeError, OSError) as e:
            self.close_connection = True
            if not self.status_code:
                self.status_code = -1
            log("connection error on %s %s: %s" % (self.command, self.path, e))
        except Exception:
            log("internal error on %s %s:\n%s" % (self.command, self.path, traceback.format_exc()))
            if not self.response_started:
                self.send_status(internal_error("fake apiserver bug: see its stderr"))
            else:
                self.close_connection = True
        finally:
            log("%s %s %s (%.3fs%s)" % (self.command, self.path, self.status_code or "-",
                                      time.time() - start,
                                      ", user %s" % self.user if self.user else ""))

    def authenticate(self, tokens):
        cert_user = None
        try:
            cert = self.connection.getpeercert()
        except (ValueError, ssl.SSLError):
            cert = None
        if cert:
            for rdn in cert.get("subject", ()):
                for k, v in rdn:
                    if k == "commonName":
                        cert_user = v
        if cert_user:
            return cert_user, tokens.get("cert:" + cert_user) or {}
        authz = self.headers.get("Authorization") or ""
        if authz[:7].lower() == "bearer ":
            tok = authz[7:].strip()
            entry = tokens.get(tok)
            if tok and isinstance(entry, dict) and not tok.startswith("cert:"):
                return entry.get("user") or tok, entry
            raise ApiError(UNAUTHORIZED)
        if authz:
            raise ApiError(UNAUTHORIZED)
        if self.api.auth.anonymous:
            return "system:anonymous", tokens.get("anonymous") or {}
        raise ApiError(UNAUTHORIZED)

    def handle_api(self):
        api = self.api
        split = urllib.parse.urlsplit(self.path)
        path = split.path
        raw_q = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        q = {k: v[0] for k, v in raw_q.items()}
        self.q = q
        tokens = api.auth.load()
        self.user, entry = self.authenticate(tokens)
        if path.startswith("/fake/"):
            if not Auth.is_admin(entry):
                info = RequestInfo()
                info.verb, info.path = self.command.lower(), path
                raise ApiError(forbidden_status(self.user, info))
            return self.handle_fake(path, q)
        info = parse_request_info(self.command, path, q)
        self.info = info
        discovery = (not info.is_resource and
                     (path.rstrip("/") in ("/api", "/apis", "/version", "/healthz", "/livez",
                                           "/readyz")
                      or (path.startswith("/apis/") and len(path.strip("/").split("/")) == 2)))
        if info.is_resource and not info.resource:
            discovery = True
        if info.is_resource:
            res = info.resource + ("/" + info.subresource if info.subresource else "")
            api.stats.count("%s:%s" % (info.verb, res))
            if not discovery and not Auth.allowed(entry, info.verb, res):
                raise ApiError(forbidden_status(self.user, info))
        else:
            api.stats.count("%s:%s" % (info.verb, path))
            if not discovery and not Auth.is_admin(entry):
                raise ApiError(forbidden_status(self.user, info))
        accept = self.headers.get("Accept") or ""
        if accept and not re.search(r"(application/json|\*/\*|application/\*|text/plain)", accept):
            raise ApiError(status_obj(406, "NotAcceptable",
                                      "only the following media types are accepted: "
                                      "application/json, application/yaml, "
                                      "application/vnd.kubernetes.protobuf"))
        fault = api.faults.take(self.path)
        if fault and self.apply_fault(fault, info):
            return
        if not info.is_resource:
            return self.handle_nonresource(path)
        if not info.resource:
            if info.version not in api.groups.get(info.group, []):
                raise ApiError(not_found_generic())
            return self.send_json(200, api.resource_list(info.group, info.version))
        rt = api.by_path.get((info.group, info.version, info.resource))
        if rt is None or (info.namespace and not rt.namespaced):
            raise ApiError(not_found_generic())
        if info.subresource and not (info.subresource == "status" and rt.status_subresource):
            raise ApiError(not_found_generic())
        if info.subresource and not info.name:
            raise ApiError(not_found_generic())
        if rt.namespaced and info.name and not info.namespace:
            raise ApiError(not_found_generic())
        return self.handle_resource(rt, info, q)

    # ---- non-resource paths
    def handle_nonresource(self, path):
        api = self.api
        p = path.rstrip("/") or "/"
        if p == "/version":
            return self.send_bytes(200, (json.dumps(api.version_doc(), indent=2) + "\n").encode())
        if p in ("/healthz", "/livez", "/readyz"):
            return self.send_bytes(200, b"ok", "text/plain; charset=utf-8",
                                   {"X-Content-Type-Options": "nosniff"})
        if p == "/api":
            return self.send_json(200, {"kind": "APIVersions", "versions": ["v1"],
                                        "serverAddressByClientCIDRs": api.server_address()})
        if p == "/apis":
            groups = [api.api_group(g) for g in api.groups if g]
            return self.send_json(200, {"kind": "APIGroupList", "apiVersion": "v1",
                                        "groups": groups})
        parts = p.strip("/").split("/")
        if len(parts) == 2 and parts[0] == "apis" and parts[1] in api.groups and parts[1]:
            doc = {"kind": "APIGroup", "apiVersion": "v1"}
            doc.update(api.api_group(parts[1]))
            return self.send_json(200, doc)
        raise ApiError(not_found_generic())

    # ---- faults
    def apply_fault(self, fault, info):
        delay = float(fault.get("delay") or 0)
        if delay:
            time.sleep(delay)
        kind = fault["kind"]
        if kind == "delay":
            return False
        is_watch = info.is_resource and info.verb == "watch"
        if kind == "status":
            code = int(fault.get("status") or 500)
            reason, msg = REASON_FOR_CODE.get(code, ("", http.HTTPStatus(code).phrase
                                                     if code in http.HTTPStatus._value2member_map_
                                                     else "fake fault"))
            msg = fault.get("message") or msg
            headers = {}
            det = None
            if code in (429, 503) or fault.get("retry_after"):
                ra = int(fault.get("retry_after") or 1)
                headers["Retry-After"] = str(ra)
                det = {"retryAfterSeconds": ra}
            if code == 500:
                det = {"causes": [{"message": msg.replace("Internal error occurred: ", "")}]}
            self.send_status(status_obj(code, fault.get("reason") or reason, msg, det), headers)
            return True
        if kind == "garbage":
            if is_watch:
                self.start_chunked()
                self.write_chunk(b"}{ not json\n")
                self.end_chunked()
            else:
                kindname = "Status"
                rt = self.api.by_path.get((info.group, info.version, info.resource))
                if rt:
                    kindname = rt.kind + ("List" if info.verb == "list" else "")
                self.send_bytes(200, ('{"kind": "%s", "items": [ {{{ not json' % kindname).encode())
            return True
        if kind == "truncate":
            if is_watch:
                self.truncate_next_event = True
                return False
            self.truncate_body = True
            return False
        return False

    # ---- /fake/ control
    def handle_fake(self, path, q):
        api = self.api
        m = self.command
        if path == "/fake/close-watches" and m == "POST":
            with api.store.cond:
                n = 0
                for w in api.store.watchers:
                    w.closed = True
                    n += 1
                api.store.cond.notify_all()
            return self.send_json(200, {"closed": n})
        if path == "/fake/compact" and m == "POST":
            rv = api.store.compact()
            return self.send_json(200, {"compactedResourceVersion": str(rv)})
        if path == "/fake/down" and m == "POST":
            try:
                secs = float(q.get("seconds", "1"))
            except ValueError:
                raise ApiError(bad_request("seconds must be a number"))
            self.close_connection = True
            self.conn.exempt = True
            self.send_json(200, {"downSeconds": secs})
            threading.Thread(target=go_down, args=(api, secs), daemon=True).start()
            return
        if path == "/fake/faults":
            if m == "POST":
                try:
                    spec = json.loads(self.body or b"{}")
                except ValueError as e:
                    raise ApiError(bad_request("bad JSON: %s" % e))
                for s in (spec if isinstance(spec, list) else [spec]):
                    api.faults.add(s)
                return self.send_json(200, {"faults": api.faults.describe()})
            if m == "GET":
                return self.send_json(200, {"faults": api.faults.describe()})
            if m == "DELETE":
                api.faults.clear()
                return self.send_json(200, {"faults": []})
        if path == "/fake/stats" and m == "GET":
            st = api.stats
            with st.lock:
                doc = {"requests": dict(sorted(st.requests.items())),
                       "requests_total": st.total,
                       "open_watches": st.open_watches, "lists": st.lists,
                       "watches_started": st.watches_started}
            with api.store.cond:
                doc["resource_version"] = str(api.store.rv)
                doc["compacted_resource_version"] = str(api.store.compact_rv)
                doc["history_events"] = len(api.store.history)
                doc["objects"] = {"%s/%s" % (g, p) if g else p: len(v)
                                  for (g, p), v in sorted(api.store.objects.items())}
            with api.conns_lock:
                doc["open_connections"] = len(api.conns)
            return self.send_json(200, doc)
        raise ApiError(not_found_generic())

    # ---- resources
    def decode_body(self, rt=None):
        try:
            obj = json.loads(self.body.decode("utf-8")) if self.body else None
        except (ValueError, UnicodeDecodeError) as e:
            raise ApiError(bad_request("json: cannot unmarshal request body: %s" % e))
        return _py_float_fix(obj)

    def render(self, rt, obj, version):
        return order_object(rt, obj, version)

    def send_object(self, code, rt, obj, version):
        self.send_json(code, self.render(rt, obj, version), sort_keys=rt.custom)

    def handle_resource(self, rt, info, q):
        verb = info.verb
        if verb in ("list", "watch"):
            if info.watch_prefix and info.name:
                q = dict(q)
                q["fieldSelector"] = ("metadata.name=%s" % info.name +
                                      ("," + q["fieldSelector"] if q.get("fieldSelector") else ""))
            return self.handle_list(rt, info, q, verb == "watch")
        if verb == "get":
            return self.handle_get(rt, info)
        if verb == "create":
            if info.name:
                raise ApiError(status_obj(405, "MethodNotAllowed",
                                          "the server does not allow this method on the requested resource",
                                          {}))
            return self.handle_create(rt, info, q)
        if verb in ("update", "patch"):
            if not info.name:
                raise ApiError(status_obj(405, "MethodNotAllowed",
                                          "the server does not allow this method on the requested resource",
                                          {}))
            return self.handle_update(rt, info, q, verb == "patch")
        if verb == "delete":
            return self.handle_delete(rt, info, q)
        if verb == "deletecollection":
            return self.handle_delete_collection(rt, info, q)
        raise ApiError(status_obj(405, "MethodNotAllowed",
                                  "the server does not allow this method on the requested resource", {}))

    def handle_get(self, rt, info):
        store = self.api.store
        with store.cond:
            obj = store.objects[rt.rkey].get(rt.key(info.namespace, info.name))
        if obj is None:
            raise ApiError(not_found(rt, info.name))
        if getattr(self, "truncate_body", False):
            return self.send_truncated(go_json(self.render(rt, obj, info.version), rt.custom))
        self.send_object(200, rt, obj, info.version)

    def send_truncated(self, body):
        self.close_connection = True
        self.status_code = 200
        self._headers(200, {"Content-Type": "application/json", "Content-Length": str(len(body))})
        self.wfile.write(body[:max(1, len(body) // 2)])
        self.conn.abort()

    def wait_for_rv(self, n):
        """Waits (holding the store lock) up to 3 s for the store to reach rv n, else 504."""
        store = self.api.store
        deadline = time.time() + 3
        while store.rv < n:
            left = deadline - time.time()
            if left <= 0:
                raise ApiError(too_large_rv(n, store.rv))
            store.cond.wait(left)

    def parse_rv(self, value):
        try:
            n = int(value)
            if n < 0:
                raise ValueError
            return n
        except ValueError:
            raise ApiError(bad_request('invalid resource version: "%s"' % value))

    def handle_list(self, rt, info, q, watch):
        api, store = self.api, self.api.store
        lsel = parse_label_selector(q.get("labelSelector", ""))
        fsel = parse_field_selector(rt, q.get("fieldSelector", ""))
        ns = info.namespace if rt.namespaced else ""
        if watch:
            return self.handle_watch(rt, info, q, ns, lsel, fsel)
        api.stats.add("lists")
        rv_param = q.get("resourceVersion", "")
        rvm = q.get("resourceVersionMatch", "")
        cont = q.get("continue", "")
        try:
            limit = int(q.get("limit") or 0)
        except ValueError:
            raise ApiError(bad_request('limit: Invalid value: "%s"' % q.get("limit")))
        if rvm and rvm not in ("Exact", "NotOlderThan"):
            raise ApiError(invalid_list_options('resourceVersionMatch: Unsupported value: "%s": '
                                                'supported values: "Exact", "NotOlderThan", ""'
                                                % rvm))
        if rvm and not rv_param:
            raise ApiError(invalid_list_options("resourceVersionMatch: Forbidden: "
                                                "resourceVersionMatch is forbidden unless "
                                                "resourceVersion is provided"))
        if rvm and cont:
            raise ApiError(invalid_list_options("resourceVersionMatch: Forbidden: "
                                                "resourceVersionMatch is forbidden when continue "
                                                "is provided"))
        if rvm == "Exact" and rv_param == "0":
            raise ApiError(invalid_list_options('resourceVersionMatch: Forbidden: '
                                                'resourceVersionMatch "exact" is forbidden for '
                                                'resourceVersion "0"'))
        prefix = (ns + "/") if (rt.namespaced and ns) else ""
        start = prefix
        with store.cond:
            if cont:
                if rv_param not in ("", "0"):
                    raise ApiError(bad_request("specifying resource version is not allowed when "
                                               "using continue"))
                tok_rv, tok_start = decode_continue(cont)
                if tok_rv == -1:
                    objs, resp_rv = store.objects[rt.rkey], store.rv
                elif tok_rv < store.compact_rv:
                    newtok = encode_continue(-1, tok_start)
                    raise ApiError(expired(EXPIRED_CONTINUE_MSG, {"continue": newtok}))
                else:
                    objs, resp_rv = store.snapshot(rt, tok_rv), tok_rv
                start = prefix + tok_start
            elif rv_param == "" or (rv_param == "0" and rvm != "Exact"):
                objs, resp_rv = store.objects[rt.rkey], store.rv
                if rv_param == "0":
                    limit = 0  # served from the watch cache, which does not paginate
            else:
                n = self.parse_rv(rv_param)
                if rvm == "Exact" or (limit > 0 and rvm == ""):
                    if n > store.rv:
                        self.wait_for_rv(n)
                    if n < store.compact_rv:
                        raise ApiError(expired("The resourceVersion for the provided list is "
                                               "too old."))
                    objs, resp_rv = store.snapshot(rt, n), n
                else:
                    self.wait_for_rv(n)
                    objs, resp_rv = store.objects[rt.rkey], store.rv
            keys = sorted(k for k in objs if k.startswith(prefix) and k >= start)
            items, last_key, has_more, idx = [], None, False, 0
            for idx, k in enumerate(keys):
                if limit and len(items) >= limit:
                    has_more = True
                    break
                last_key = k
                o = objs[k]
                if labels_match(lsel, o) and fields_match(rt, fsel, o):
                    items.append(o)
        meta = {"resourceVersion": str(resp_rv)}
        if has_more:
            meta["continue"] = encode_continue(resp_rv, last_key[len(prefix):] + "\x00")
            if not lsel and not fsel:
                meta["remainingItemCount"] = len(keys) - idx
        version = info.version
        if rt.custom:
            rendered = [self.render(rt, o, version) for o in items]
            if "continue" not in meta:
                meta = {"continue": "", "resourceVersion": meta["resourceVersion"]}
            doc = {"apiVersion": rt.api_version(version), "items": rendered,
                   "kind": rt.kind + "List", "metadata": meta}
        else:
            doc = {"kind": rt.kind + "List", "apiVersion": rt.api_version(version),
                   "metadata": meta,
                   "items": [order_object(rt, o, version, include_type=False) for o in items]}
        body = go_json(doc, rt.custom)
        if getattr(self, "truncate_body", False):
            return self.send_truncated(body)
        self.send_bytes(200, body)

    # ---- watch
    def start_chunked(self):
        self.status_code = 200
        self._headers(200, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})

    def write_chunk(self, data):
        if data:
            self.wfile.write(b"%x\r\n" % len(data) + data + b"\r\n")

    def end_chunked(self):
        self.wfile.write(b"0\r\n\r\n")

    def write_events(self, blobs):
        if not blobs:
            return
        if getattr(self, "truncate_next_event", False):
            b = blobs[0]
            self.write_chunk(b[:max(1, len(b) // 2)])
            self.close_connection = True
            self.conn.abort()
            raise ClientGone()
        if not self.api.split_writes:
            self.write_chunk(b"".join(blobs))
            return
        buf = b"".join(blobs)
        cuts = set()
        pos = 0
        for b in blobs:
            s, e = pos, pos + len(b)
            pos = e
            if len(b) > 2:
                cuts.add(random.randint(s + 1, e - 1))
            r = random.random()
            if r < 0.3:
                cuts.add(e - 1)       # right before the newline
            elif r < 0.6:
                cuts.add(e)           # right after the newline
            # else: the tail of this event shares a chunk with the head of the next one
            multi = [i for i in range(s, e) if buf[i] >= 0xC0]
            if multi and random.random() < 0.7:
                i = random.choice(multi)
                cuts.add(i + 1)
            for _ in range(random.randint(0, 3)):
                if len(b) > 2:
                    cuts.add(random.randint(s + 1, e - 1))
        cuts = sorted(c for c in cuts if 0 < c < len(buf))
        prev = 0
        for c in cuts + [len(buf)]:
            self.write_chunk(buf[prev:c])
            prev = c
            time.sleep(random.uniform(0, 0.002))

    def event_blob(self, w, etype, obj):
        rt = w.rt
        o = order_object(rt, obj, w.version)
        return (b'{"type":"' + etype.encode() + b'","object":' +
                go_json_str(o, rt.custom).encode("utf-8", "replace") + b"}\n")

    def bookmark_blob(self, w, rv, initial_end=False):
        rt = w.rt
        meta = {"resourceVersion": str(rv)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        if rt.custom:
            o = {"apiVersion": rt.api_version(w.version), "kind": rt.kind, "metadata": meta}
        else:
            meta["creationTimestamp"] = None
            o = {"kind": rt.kind, "apiVersion": rt.api_version(w.version), "metadata": meta}
            o.update(copy.deepcopy(rt.empty))
        return (b'{"type":"BOOKMARK","object":' + go_json_str(o, rt.custom).encode() + b"}\n")

    def handle_watch(self, rt, info, q, ns, lsel, fsel):
        api, store = self.api, self.api.store
        rv_param = q.get("resourceVersion", "")
        timeout = api.watch_timeout
        if q.get("timeoutSeconds"):
            try:
                ts = int(q["timeoutSeconds"])
            except ValueError:
                raise ApiError(bad_request('timeoutSeconds: Invalid value: "%s"' % q["timeoutSeconds"]))
            if ts > 0:
                timeout = min(timeout, ts)
        allow_bm = bool(parse_bool(q.get("allowWatchBookmarks"), "allowWatchBookmarks"))
        send_initial = parse_bool(q.get("sendInitialEvents"), "sendInitialEvents")
        if send_initial and not allow_bm:
            raise ApiError(invalid_list_options("allowWatchBookmarks: Forbidden: "
                                                "sendInitialEvents requires setting "
                                                "allowWatchBookmarks to true"))
        w = Watcher(rt, ns, lsel, fsel, info.version, allow_bm)
        error_status = None
        initial_bookmark = None
        with store.cond:
            if send_initial or (send_initial is None and rv_param in ("", "0")):
                if rv_param not in ("", "0"):
                    self.wait_for_rv(self.parse_rv(rv_param))
                objs = store.objects[rt.rkey]
                for k in sorted(objs):
                    if w.matches(objs[k]):
                        w.queue.append(("ADDED", objs[k]))
                if send_initial:
                    initial_bookmark = store.rv
            elif rv_param in ("", "0"):
                pass
            else:
                n = self.parse_rv(rv_param)
                if n > store.rv:
                    self.wait_for_rv(n)
                if n < store.compact_rv:
                    error_status = expired("too old resource version: %d (%d)"
                                           % (n, store.compact_rv))
                else:
                    for ev in store.history:
                        if ev.rv > n and ev.rkey == rt.rkey:
                            w.offer(ev)
            if error_status is None:
                store.watchers.add(w)
        api.stats.add("watches_started")
        api.stats.add("open_watches")
        try:
            self.start_chunked()
            if error_status is not None:
                self.write_chunk(b'{"type":"ERROR","object":' + go_json_str(error_status).encode()
                                 + b"}\n")
                self.end_chunked()
                return
            self.watch_loop(w, timeout, initial_bookmark)
        finally:
            with store.cond:
                store.watchers.discard(w)
            api.stats.add("open_watches", -1)

    def client_gone(self):
        try:
            r, _, _ = select.select([self.connection], [], [], 0)
            if r and not self.connection.pending():
                data = socket.socket.recv(self.connection, 1, socket.MSG_PEEK)
                return data == b""
        except (OSError, ValueError):
            return True
        return False

    def watch_loop(self, w, timeout, initial_bookmark):
        api, store = self.api, self.api.store
        deadline = time.time() + timeout
        interval = api.bookmark_interval
        next_bm = time.time() + interval
        pending_initial_bm = initial_bookmark
        while True:
            with store.cond:
                while True:
                    now = time.time()
                    if w.queue or w.closed or w.aborted or now >= deadline:
                        break
                    if pending_initial_bm is not None:
                        break
                    if w.allow_bookmarks and now >= next_bm:
                        break
                    wake = min(deadline, next_bm if w.allow_bookmarks else deadline, now + 0.5)
                    store.cond.wait(max(0.0, wake - now))
                    if not w.queue and self.client_gone():
                        w.aborted = True
                events, w.queue = w.queue, []
                current_rv = store.rv
                closed, aborted = w.closed, w.aborted
            if aborted:
                self.close_connection = True
                return
            blobs = [self.event_blob(w, t, o) for t, o in events]
            now = time.time()
            if pending_initial_bm is not None:
                blobs.append(self.bookmark_blob(w, pending_initial_bm, initial_end=True))
                pending_initial_bm = None
            timed_out = now >= deadline
            if w.allow_bookmarks and (now >= next_bm or (timed_out and not closed)):
                blobs.append(self.bookmark_blob(w, current_rv))
                next_bm = now + interval
            self.write_events(blobs)
            if closed or timed_out:
                self.end_chunked()
                return

    # ---- writes
    def check_type(self, rt, obj, version):
        if not isinstance(obj, dict):
            raise ApiError(bad_request("the body of the request was in an unknown format - "
                                       "accepted media types include: application/json, "
                                       "application/yaml, application/vnd.kubernetes.protobuf"))
        av = obj.get("apiVersion")
        if av and av != rt.api_version(version):
            raise ApiError(bad_request("the API version in the data (%s) does not match the "
                                       "expected API version (%s)" % (av, rt.api_version(version))))
        k = obj.get("kind")
        if k and k != rt.kind:
            raise ApiError(bad_request("the kind in the data (%s) does not match the expected "
                                       "kind (%s)" % (k, rt.kind)))

    def prune(self, rt, obj):
        allowed = {"apiVersion", "kind", "metadata"} | set(rt.top_fields)
        out = {}
        for k, v in obj.items():
            if k in allowed:
                out[k] = v
            else:
                self.warnings.append('unknown field "%s"' % k)
        meta = out.get("metadata")
        if meta is None:
            meta = {}
        if not isinstance(meta, dict):
            raise ApiError(bad_request("metadata must be an object"))
        m2 = {}
        for k, v in meta.items():
            if k in OBJECT_META_ORDER:
                m2[k] = v
            else:
                self.warnings.append('unknown field "metadata.%s"' % k)
        out["metadata"] = m2
        return out

    def dry_run(self, q):
        dr = q.get("dryRun")
        if dr and dr != "All":
            raise ApiError(bad_request('dryRun: Unsupported value: "%s": supported values: "All"'
                                       % dr))
        return dr == "All"

    def check_input_media_type(self):
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype not in ("", "application/json", "application/yaml"):
            raise ApiError(status_obj(415, "UnsupportedMediaType",
                                      "the body of the request was in an unknown format - "
                                      "accepted media types include: application/json, "
                                      "application/yaml, application/vnd.kubernetes.protobuf"))

    def handle_create(self, rt, info, q):
        store = self.api.store
        if not getattr(self, "applying", False):
            self.check_input_media_type()
        obj = self.decode_body()
        self.check_type(rt, obj, info.version)
        obj = self.prune(rt, copy.deepcopy(obj))
        meta = obj["metadata"]
        if rt.namespaced:
            if meta.get("namespace") and meta["namespace"] != info.namespace:
                raise ApiError(bad_request("the namespace of the provided object does not match "
                                           "the namespace sent on the request"))
            meta["namespace"] = info.namespace
        else:
            meta.pop("namespace", None)
        if meta.get("resourceVersion"):
            raise ApiError(internal_error("resourceVersion should not be set on objects to be "
                                          "created"))
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(
                random.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))
        for k in ("uid", "selfLink", "creationTimestamp", "deletionTimestamp",
                  "deletionGracePeriodSeconds", "managedFields", "generation"):
            meta.pop(k, None)
        self.prepare_create(rt, obj)
        with store.cond:
            self.api.defaulter.apply(rt, obj, store.used_cluster_ips())
            errs = validate(rt, obj)
            if errs:
                raise ApiError(invalid(rt, meta.get("name", ""), errs))
            key = rt.key(info.namespace, meta["name"])
            if key in store.objects[rt.rkey]:
                raise ApiError(already_exists(rt, meta["name"]))
            meta["uid"] = str(uuid.uuid4())
            meta["generation"] = 1
            meta["creationTimestamp"] = now_rfc3339()
            obj["apiVersion"] = rt.api_version(rt.versions[0])
            obj["kind"] = rt.kind
            if self.dry_run(q):
                obj = with_rv(obj, store.rv)
                obj["metadata"].pop("resourceVersion", None)
            else:
                store.rv += 1
                obj = with_rv(obj, store.rv)
                store.objects[rt.rkey][key] = obj
                store.commit(rt, "ADDED", obj, None)
        self.send_object(201, rt, obj, info.version)

    def prepare_create(self, rt, obj):
        if rt.kind == "Pod":
            obj["status"] = {"phase": "Pending", "qosClass": _qos(obj)}
        elif rt.status_subresource and not rt.status_on_create:
            if rt.custom:
                obj.pop("status", None)
            else:
                obj["status"] = {}

    def handle_update(self, rt, info, q, is_patch):
        store = self.api.store
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        body = self.decode_body()
        if is_patch:
            supported = ["application/json-patch+json", "application/merge-patch+json",
                         "application/apply-patch+yaml"]
            if not rt.custom:
                supported.insert(2, "application/strategic-merge-patch+json")
            if ctype not in supported:
                raise ApiError(status_obj(415, "UnsupportedMediaType",
                                          "the body of the request was in an unknown format - "
                                          "accepted media types include: " + ", ".join(supported)))
            if ctype == "application/apply-patch+yaml" and not q.get("fieldManager"):
                raise ApiError(invalid_list_options(
                    "fieldManager: Required value: is required for apply patch",
                    kind="PatchOptions"))
            if body is None:
                raise ApiError(bad_request("the body of the request was empty"))
        else:
            self.check_input_media_type()
            self.check_type(rt, body, info.version)
            if isinstance(body, dict):
                bname = (body.get("metadata") or {}).get("name")
                if bname and bname != info.name:
                    raise ApiError(bad_request("the name of the object (%s) does not match the "
                                               "name on the URL (%s)" % (bname, info.name)))
                bns = (body.get("metadata") or {}).get("namespace")
                if rt.namespaced and bns and bns != info.namespace:
                    raise ApiError(bad_request("the namespace of the provided object does not "
                                               "match the namespace sent on the request"))
        key = rt.key(info.namespace, info.name)
        dry = self.dry_run(q)
        if is_patch and ctype == "application/apply-patch+yaml":
            with store.cond:
                missing = key not in store.objects[rt.rkey]
            if missing:
                # server-side apply of a missing object creates it
                if not isinstance(body, dict):
                    raise ApiError(bad_request("apply patches must be objects"))
                body = dict(body)
                body["metadata"] = dict(body.get("metadata") or {}, name=info.name)
                self.body = json.dumps(body).encode()
                self.applying = True
                return self.handle_create(rt, info, q)
        with store.cond:
            old = store.objects[rt.rkey].get(key)
            if old is None:
                raise ApiError(not_found(rt, info.name))
            old_view = order_object(rt, old, info.version)
            if is_patch:
                if ctype == "application/json-patch+json":
                    try:
                        new = json_patch(old_view, body)
                    except PatchError as e:
                        raise ApiError(status_obj(422, "Invalid",
                                                  "the server rejected our request due to an "
                                                  "error in our request",
                                                  {"causes": [{"message": str(e)}]}))
                elif not isinstance(body, dict):
                    raise ApiError(bad_request("json: cannot unmarshal array into Go value of "
                                               "type map[string]interface {}"))
                elif ctype == "application/merge-patch+json":
                    new = merge_patch(old_view, body)
                else:
                    new = strategic_merge(old_view, body, rt.merge_keys)
                if not isinstance(new, dict):
                    raise ApiError(bad_request("the patched object is not a JSON object"))
                self.check_type(rt, new, info.version)
                new_meta = new.get("metadata") or {}
                if (new_meta.get("resourceVersion") and
                        new_meta["resourceVersion"] != old["metadata"]["resourceVersion"]):
                    raise ApiError(conflict(rt, info.name))
                if new_meta.get("name", info.name) != info.name:
                    raise ApiError(bad_request("the name of the object (%s) does not match the "
                                               "name on the URL (%s)"
                                               % (new_meta.get("name"), info.name)))
                new = self.prune(rt, new)
                new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            else:
                new = self.prune(rt, copy.deepcopy(body))
                brv = new["metadata"].get("resourceVersion")
                if brv:
                    if brv != old["metadata"]["resourceVersion"]:
                        raise ApiError(conflict(rt, info.name))
                elif not rt.unconditional_update:
                    raise ApiError(status_obj(422, "Invalid",
                                   '%s "%s" is invalid: metadata.resourceVersion: Invalid value: '
                                   '0x0: must be specified for an update'
                                   % (rt.group_kind, info.name),
                                   details(info.name, rt.group, rt.kind, causes=[{
                                       "reason": "FieldValueInvalid",
                                       "message": "Invalid value: 0x0: must be specified for an update",
                                       "field": "metadata.resourceVersion"}])))
            new = self.prepare_update(rt, old, new, info)
            self.api.defaulter.apply(rt, new, store.used_cluster_ips() - {
                (old.get("spec") or {}).get("clusterIP")})
            errs = validate(rt, new)
            errs += self.immutable_errors(rt, old, new)
            if errs:
                raise ApiError(invalid(rt, info.name, errs))
            if new == old:
                return self.send_object(200, rt, old, info.version)
            if dry:
                return self.send_object(200, rt, new, info.version)
            store.rv += 1
            new = with_rv(new, store.rv)
            nm = new["metadata"]
            if nm.get("deletionTimestamp") and not nm.get("finalizers") and \
                    not nm.get("deletionGracePeriodSeconds"):
                del store.objects[rt.rkey][key]
                store.commit(rt, "DELETED", new, old)
            else:
                store.objects[rt.rkey][key] = new
                store.commit(rt, "MODIFIED", new, old)
        self.send_object(200, rt, new, info.version)

    def prepare_update(self, rt, old, new, info):
        om, nm = old["metadata"], new["metadata"]
        meta = dict(nm)
        for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                  "generation", "namespace", "name", "selfLink", "managedFields",
                  "resourceVersion"):
            if k in om:
                meta[k] = om[k]
            else:
                meta.pop(k, None)
        new["apiVersion"], new["kind"] = old["apiVersion"], old["kind"]
        if info.subresource == "status":
            out = dict(old)
            if "status" in new:
                out["status"] = new["status"]
            else:
                out.pop("status", None)
            out["metadata"] = dict(om)
            if rt.kind == "Service":
                out.setdefault("status", {"loadBalancer": {}})
            return copy.deepcopy(out)
        if rt.status_subresource:
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        if om.get("deletionTimestamp") and meta.get("finalizers") and \
                set(meta.get("finalizers") or []) - set(om.get("finalizers") or []):
            raise ApiError(invalid(rt, info.name, [FieldErr(
                "FieldValueForbidden", "metadata.finalizers", None,
                "no new finalizers can be added if the object is being deleted")]))
        new["metadata"] = meta
        if rt.kind == "Service":
            ospec, nspec = old.get("spec") or {}, new.get("spec")
            if isinstance(nspec, dict):
                for k in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
                    if k not in nspec and k in ospec:
                        nspec[k] = copy.deepcopy(ospec[k])
        strip = lambda o: {k: v for k, v in o.items() if k not in ("metadata", "status")}
        if strip(old) != strip(new):
            meta["generation"] = om.get("generation", 1) + 1
        return new

    def immutable_errors(self, rt, old, new):
        errs = []
        if rt.kind == "Service":
            o, n = (old.get("spec") or {}).get("clusterIP"), (new.get("spec") or {}).get("clusterIP")
            if o and n != o:
                errs.append(FieldErr("FieldValueInvalid", "spec.clusterIPs[0]", [n],
                                     "may not change once set"))
        if rt.kind == "EndpointSlice" and old.get("addressType") != new.get("addressType"):
            errs.append(FieldErr("FieldValueInvalid", "addressType", new.get("addressType"),
                                 "field is immutable"))
        if rt.kind == "Pod":
            os_, ns_ = dict(old.get("spec") or {}), dict(new.get("spec") or {})
            if os_.get("nodeName") != ns_.get("nodeName") and os_.get("nodeName"):
                errs.append(FieldErr("FieldValueForbidden", "spec", None,
                                     "pod updates may not change fields other than "
                                     "`spec.containers[*].image`, `spec.initContainers[*].image`, "
                                     "`spec.activeDeadlineSeconds`, `spec.tolerations` (only "
                                     "additions to existing tolerations), "
                                     "`spec.terminationGracePeriodSeconds` (allow it to be set to "
                                     "1 if it was previously negative)"))
        return errs

    def delete_options(self, q):
        opts = {}
        body = self.decode_body()
        if isinstance(body, dict):
            opts.update(body)
        if "gracePeriodSeconds" in q:
            try:
                opts["gracePeriodSeconds"] = int(q["gracePeriodSeconds"])
            except ValueError:
                raise ApiError(bad_request("gracePeriodSeconds must be an integer"))
        return opts

    def handle_delete(self, rt, info, q):
        store = self.api.store
        opts = self.delete_options(q)
        dry = self.dry_run(q) or opts.get("dryRun") == ["All"]
        key = rt.key(info.namespace, info.name)
        with store.cond:
            old = store.objects[rt.rkey].get(key)
            if old is None:
                raise ApiError(not_found(rt, info.name))
            pre = opts.get("preconditions") or {}
            om = old["metadata"]
            if pre.get("uid") and pre["uid"] != om.get("uid"):
                raise ApiError(conflict(rt, info.name,
                                        "Precondition failed: UID in precondition: %s, UID in "
                                        "object meta: %s" % (pre["uid"], om.get("uid"))))
            if pre.get("resourceVersion") and pre["resourceVersion"] != om.get("resourceVersion"):
                raise ApiError(conflict(rt, info.name,
                                        "Precondition failed: ResourceVersion in precondition: "
                                        "%s, ResourceVersion in object meta: %s"
                                        % (pre["resourceVersion"], om.get("resourceVersion"))))
            if dry:
                return self.deleted_response(rt, old, info)
            grace = opts.get("gracePeriodSeconds")
            graceful = False
            if rt.kind == "Pod":
                spec = old.get("spec") or {}
                if grace is None:
                    grace = spec.get("terminationGracePeriodSeconds", 30)
                phase = (old.get("status") or {}).get("phase")
                graceful = bool(spec.get("nodeName")) and grace and grace > 0 and \
                    phase not in ("Succeeded", "Failed")
            if om.get("finalizers") or graceful:
                if om.get("deletionTimestamp") and not graceful:
                    return self.send_object(200, rt, old, info.version)
                new = copy.deepcopy(old)
                nm = new["metadata"]
                nm["deletionTimestamp"] = now_rfc3339(grace if graceful else 0)
                nm["deletionGracePeriodSeconds"] = int(grace) if graceful else 0
                store.rv += 1
                new = with_rv(new, store.rv)
                store.objects[rt.rkey][key] = new
                store.commit(rt, "MODIFIED", new, old)
                if graceful and not om.get("finalizers"):
                    t = threading.Timer(self.api.args.pod_deletion_delay, kubelet_confirm_delete,
                                        args=(self.api, rt, key, om.get("uid")))
                    t.daemon = True
                    t.start()
                return self.send_object(200, rt, new, info.version)
            store.rv += 1
            store.commit(rt, "DELETED", with_rv(old, store.rv), old)
            del store.objects[rt.rkey][key]
        self.deleted_response(rt, old, info)

    def deleted_response(self, rt, old, info):
        if rt.return_deleted:
            return self.send_object(200, rt, old, info.version)
        self.send_json(200, status_obj(0, "", "", details(old["metadata"]["name"], rt.group,
                                                          rt.plural, old["metadata"].get("uid")),
                                       success=True))

    def handle_delete_collection(self, rt, info, q):
        store = self.api.store
        lsel = parse_label_selector(q.get("labelSelector", ""))
        fsel = parse_field_selector(rt, q.get("fieldSelector", ""))
        ns = info.namespace if rt.namespaced else ""
        dry = self.dry_run(q)
        deleted = []
        with store.cond:
            objs = store.objects[rt.rkey]
            for k in sorted(objs):
                o = objs[k]
                if ns and o["metadata"].get("namespace") != ns:
                    continue
                if not (labels_match(lsel, o) and fields_match(rt, fsel, o)):
                    continue
                deleted.append(o)
                if dry or o["metadata"].get("finalizers"):
                    continue
                store.rv += 1
                store.commit(rt, "DELETED", with_rv(o, store.rv), o)
                del objs[k]
            rv = store.rv
        version = info.version
        if rt.custom:
            doc = {"apiVersion": rt.api_version(version),
                   "items": [order_object(rt, o, version) for o in deleted],
                   "kind": rt.kind + "List",
                   "metadata": {"continue": "", "resourceVersion": str(rv)}}
        else:
            doc = {"kind": rt.kind + "List", "apiVersion": rt.api_version(version),
                   "metadata": {"resourceVersion": str(rv)},
                   "items": [order_object(rt, o, version, False) for o in deleted]}
        self.send_json(200, doc, sort_keys=rt.custom)


def invalid_list_options(msg, kind="ListOptions"):
    field = msg.split(":", 1)[0]
    return status_obj(422, "Invalid", '%s.meta.k8s.io "" is invalid: %s' % (kind, msg),
                      {"group": "meta.k8s.io", "kind": kind,
                       "causes": [{"reason": "FieldValueInvalid",
                                   "message": msg.split(": ", 1)[1] if ": " in msg else msg,
                                   "field": field}]})


EXPIRED_CONTINUE_MSG = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this response "
    "to retrieve the remainder of the results. Continuing with the provided token results in an "
    "inconsistent list - objects that were created, modified, or deleted between the time the "
    "first chunk was returned and now may show up in the list.")


def encode_continue(rv, start):
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start},
                     separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_continue(token):
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        doc = json.loads(raw)
        if doc.get("v") != "meta.k8s.io/v1":
            raise ValueError("incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
        rv = int(doc["rv"])
        start = doc["start"]
        if not isinstance(start, str) or start.startswith("/") or ".." in start.split("/"):
            raise ValueError("path traversal not allowed")
        return rv, start
    except (ValueError, KeyError, TypeError) as e:
        raise ApiError(bad_request("continue key is not valid: %s" % e))


def kubelet_confirm_delete(api, rt, key, uid):
    store = api.store
    with store.cond:
        cur = store.objects[rt.rkey].get(key)
        if cur is None or cur["metadata"].get("uid") != uid or \
                not cur["metadata"].get("deletionTimestamp") or cur["metadata"].get("finalizers"):
            return
        store.rv += 1
        store.commit(rt, "DELETED", with_rv(cur, store.rv), cur)
        del store.objects[rt.rkey][key]


def go_down(api, seconds):
    with api.down_lock:
        time.sleep(0.05)  # let the /fake/down response leave
        httpd = api.httpd
        httpd.shutdown()
        try:
            httpd.socket.close()
        except OSError:
            pass
        with api.store.cond:
            for w in api.store.watchers:
                w.aborted = True
            api.store.cond.notify_all()
        with api.conns_lock:
            conns = list(api.conns)
        for c in conns:
            c.abort()
        log("DOWN for %.2fs" % seconds)
        time.sleep(seconds)
        for attempt in range(100):
            try:
                s = socket.socket(httpd.address_family, httpd.socket_type)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((api.args.host, api.port))
                s.listen(httpd.request_queue_size)
                httpd.socket = s
                break
            except OSError as e:
                s.close()
                log("rebind failed (%s), retrying" % e)
                time.sleep(0.05)
        log("UP again on port %d" % api.port)
        api.up_event.set()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cert", required=True, help="server certificate chain (PEM)")
    ap.add_argument("--key", required=True, help="server private key (PEM)")
    ap.add_argument("--client-ca", help="CA bundle to verify optional client certificates")
    ap.add_argument("--tokens", required=True, help="JSON tokens file, re-read on every request")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--watch-timeout", type=float, default=1800.0,
                    help="server-side watch timeout in seconds (min with timeoutSeconds)")
    ap.add_argument("--bookmark-interval", type=float, default=1.0)
    ap.add_argument("--split-writes", action="store_true",
                    help="write watch events as many small chunks split at random bytes")
    ap.add_argument("--history", type=int, default=1000,
                    help="number of events kept for watch replay / consistent continue")
    ap.add_argument("--istio-versions", default="v1,v1beta1,v1alpha3",
                    help="networking.istio.io versions served (comma-separated, first preferred)")
    ap.add_argument("--anonymous-auth", action="store_true",
                    help="treat requests without credentials as system:anonymous")
    ap.add_argument("--pod-deletion-delay", type=float, default=0.0,
                    help="seconds before a gracefully deleted pod bound to a node disappears")
    args = ap.parse_args(argv)

    api = FakeApiServer(args)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args.cert, args.key)
    ctx.set_alpn_protocols(["http/1.1"])
    if args.client_ca:
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.load_verify_locations(args.client_ca)
    if ":" in args.host:
        HTTPServer.address_family = socket.AF_INET6
    httpd = HTTPServer((args.host, args.port), Handler, api, ctx)
    api.httpd = httpd
    api.port = httpd.server_address[1]
    sys.stdout.write("LISTENING %d\n" % api.port)
    sys.stdout.flush()
    log("fake kube-apiserver listening on https://%s:%d" % (args.host, api.port))
    try:
        while True:
            httpd.serve_forever(poll_interval=0.1)
            api.up_event.wait()
            api.up_event.clear()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
