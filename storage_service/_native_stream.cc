// StreamSamples on gRPC C++: the storage service's data plane (CPython extension).
//
// Why: gRPC-Python copies every response into a fresh gRPC slice on the server, and on the
// client joins the received slices into one `bytes` through intermediate buffers. For megabyte
// batches those copies (and ~45 us of Python-side work per message) are most of the CPU a
// stream costs. Here the same RPC, `/nessa.v1.Storage/StreamSamples`, with the same messages,
// runs on gRPC C++: the server lends the Python `bytes` of each finished SampleBatch to gRPC as
// a slice (no copy), the client copies the received slices once into the `bytes` it returns.
// The Python side (storage_service/_data_plane.py) builds the batches and wraps this module.
//
// Dataflow
//   server:  request ──> grpc++ sync thread ──(GIL) handler(request bytes) -> iterator
//            for each item:  bytes ──Slice(view, DECREF on release)──> Write   (GIL released)
//                            (code, message) ──> final status
//   client:  Read(ByteBuffer) (GIL released) ──one copy──> bytes ──> Python (zero-copy views)
//
// Argument contract (module functions; the Python wrapper checks types and values first)
//   server_start(addr: str, handler: callable, cert_pem: bytes|None, key_pem: bytes|None,
//                token: str|None, max_receive: int, max_send: int, max_threads: int,
//                int_args: tuple[(str, int)]) -> (capsule, port)
//       handler(request: bytes) -> iterable of SampleBatch wire bytes, optionally ending in a
//       (code: int, message: str) tuple that becomes the call's status. Raises ValueError if
//       the address cannot be bound.
//   server_stop(server, grace_s: float)         idempotent; calls in flight get grace_s
//   channel_new(target: str, root_pem: bytes|None, server_name: str|None, max_message: int,
//               int_args: tuple[(str, int)])
//       int_args (both): gRPC channel arguments, e.g. the keepalive settings of _grpc_options
//   call_start(channel, method: str, request: bytes, metadata: tuple[(str, str)], timeout_s)
//       timeout_s <= 0: no deadline
//   call_next(call) -> bytes | None             None once the stream has ended; the first one
//                                               sends the request (blocks while connecting)
//   call_finish(call) -> (code: int, details: str)   only after call_next returned None
//   call_cancel(call)                            thread-safe
// The GIL is released around every gRPC call; gRPC never runs while this code holds it, so
// the GIL cannot deadlock against gRPC's own locks.

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/rpc_service_method.h>
#include <grpcpp/resource_quota.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/support/method_handler.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace {

constexpr const char* kServerCapsule = "nessa.native_stream.server";
constexpr const char* kChannelCapsule = "nessa.native_stream.channel";
constexpr const char* kCallCapsule = "nessa.native_stream.call";
constexpr const char* kStreamMethod = "/nessa.v1.Storage/StreamSamples";

bool interpreter_finalizing() {
#if PY_VERSION_HEX >= 0x030D0000
  return Py_IsFinalizing();
#else
  return _Py_IsFinalizing();
#endif
}

// gRPC drops its last reference to a lent `bytes` on any of its threads.
void release_pyobject(void* obj) {
  if (!Py_IsInitialized() || interpreter_finalizing()) return;  // leaked at exit, never a crash
  PyGILState_STATE g = PyGILState_Ensure();
  Py_DECREF(static_cast<PyObject*>(obj));
  PyGILState_Release(g);
}

// The pending Python exception as text (clears it). Call with the GIL held.
std::string take_pyerr() {
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  std::string out = "error in the stream handler";
  PyObject* text = value ? PyObject_Str(value) : (type ? PyObject_Str(type) : nullptr);
  if (text) {
    const char* s = PyUnicode_AsUTF8(text);
    if (s) out = std::string(type ? reinterpret_cast<PyTypeObject*>(type)->tp_name : "error") + ": " + s;
    Py_DECREF(text);
  }
  PyErr_Clear();
  Py_XDECREF(type);
  Py_XDECREF(value);
  Py_XDECREF(tb);
  return out;
}

// Applies ((name, int), ...) to `set(name, value)`; false (with a Python error set) on a bad item.
template <typename Set>
bool apply_int_args(PyObject* args, Set set) {
  PyObject* seq = PySequence_Fast(args, "int_args must be a sequence of (name, int) pairs");
  if (!seq) return false;
  for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); ++i) {
    const char* name;
    int value;
    if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "si", &name, &value)) {
      Py_DECREF(seq);
      return false;
    }
    set(std::string(name), value);
  }
  Py_DECREF(seq);
  return true;
}

bool constant_time_equal(const grpc::string_ref& a, const std::string& b) {
  const char* p = a.data();
  unsigned diff = a.size() ^ b.size();
  for (size_t i = 0; i < b.size(); ++i) diff |= static_cast<unsigned char>(i < a.size() ? p[i] : 0) ^ static_cast<unsigned char>(b[i]);
  return diff == 0;
}

// ---- server --------------------------------------------------------------------------------

class StreamService final : public grpc::Service {
 public:
  // Registered as bidi streaming, though clients call it server-streaming (the wire is the
  // same): gRPC's sync server reads a server-streaming method's request before the handler
  // runs, and gRPC C++ 1.51 assembles a whole message before checking its size, so a 120 MiB
  // request without a token was read in full. A bidi handler runs on the headers alone: the
  // token is checked before a byte of the request is read (an unauthenticated request costs
  // about one flow-control window), then the one request is read, then batches are written.
  StreamService(PyObject* handler, std::string expected_auth) : handler_(handler), expected_auth_(std::move(expected_auth)) {
    AddMethod(new grpc::internal::RpcServiceMethod(
        kStreamMethod, grpc::internal::RpcMethod::BIDI_STREAMING,
        new grpc::internal::BidiStreamingHandler<StreamService, grpc::ByteBuffer, grpc::ByteBuffer>(
            [](StreamService* self, grpc::ServerContext* ctx, grpc::ServerReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>* io) {
              return self->Stream(ctx, io);
            },
            this)));
  }

 private:
  grpc::Status Authenticate(grpc::ServerContext* ctx) const {
    if (expected_auth_.empty()) return grpc::Status::OK;
    const auto& md = ctx->client_metadata();
    auto it = md.find("authorization");
    if (it == md.end()) return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "missing bearer token");
    if (!constant_time_equal(it->second, expected_auth_)) return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "wrong bearer token");
    return grpc::Status::OK;
  }

  grpc::Status Stream(grpc::ServerContext* ctx, grpc::ServerReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>* out) {
    grpc::Status status = Authenticate(ctx);  // before reading the request
    if (!status.ok()) return status;
    grpc::ByteBuffer received;
    // Read fails for a request over the receive limit too; the call then ends with gRPC's own
    // RESOURCE_EXHAUSTED status, which takes precedence over the one returned here.
    if (!out->Read(&received)) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no StreamSamplesRequest received");
    const grpc::ByteBuffer* req = &received;
    std::vector<grpc::Slice> parts;
    std::string request;
    if (!req->Dump(&parts).ok()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "unreadable request");
    for (const auto& s : parts) request.append(reinterpret_cast<const char*>(s.begin()), s.size());

    PyGILState_STATE g = PyGILState_Ensure();
    PyObject* iterable = PyObject_CallFunction(handler_, "y#", request.data(), static_cast<Py_ssize_t>(request.size()));
    PyObject* iter = iterable ? PyObject_GetIter(iterable) : nullptr;
    Py_XDECREF(iterable);
    if (!iter) {
      status = grpc::Status(grpc::StatusCode::INTERNAL, take_pyerr());
    }
    while (iter) {
      PyObject* item = PyIter_Next(iter);
      if (!item) {
        if (PyErr_Occurred()) status = grpc::Status(grpc::StatusCode::INTERNAL, take_pyerr());
        break;
      }
      if (PyTuple_Check(item)) {  // (code, message): the call's final status
        int code = 0;
        const char* message = "";
        if (!PyArg_ParseTuple(item, "is", &code, &message) || code <= 0 || code > 16) {
          PyErr_Clear();
          status = grpc::Status(grpc::StatusCode::INTERNAL, "stream handler returned a malformed status");
        } else {
          status = grpc::Status(static_cast<grpc::StatusCode>(code), message);
        }
        Py_DECREF(item);
        break;
      }
      if (!PyBytes_Check(item)) {
        status = grpc::Status(grpc::StatusCode::INTERNAL, std::string("stream handler yielded ") + Py_TYPE(item)->tp_name + ", not bytes");
        Py_DECREF(item);
        break;
      }
      bool sent;
      {
        // The slice owns `item`'s reference: gRPC reads the bytes in place and releases them.
        grpc::Slice slice(PyBytes_AS_STRING(item), static_cast<size_t>(PyBytes_GET_SIZE(item)), release_pyobject, item);
        grpc::ByteBuffer message(&slice, 1);
        PyThreadState* ts = PyEval_SaveThread();
        sent = out->Write(message) && !ctx->IsCancelled();
        message.Clear();
        slice = grpc::Slice();
        PyEval_RestoreThread(ts);
      }
      if (!sent) {
        status = grpc::Status(grpc::StatusCode::CANCELLED, "the client cancelled the stream");
        break;
      }
    }
    if (iter) {  // run the generator's cleanup now, on this thread
      PyObject* r = PyObject_CallMethod(iter, "close", nullptr);
      if (!r) PyErr_Clear();
      Py_XDECREF(r);
      Py_DECREF(iter);
    }
    PyGILState_Release(g);
    return status;
  }

  PyObject* handler_;  // borrowed: ServerBox owns it
  std::string expected_auth_;
};

struct ServerBox {
  std::unique_ptr<StreamService> service;
  std::unique_ptr<grpc::Server> server;
  PyObject* handler = nullptr;
};

void stop_server(ServerBox* box, double grace_s) {
  if (!box->server) return;
  std::unique_ptr<grpc::Server> server = std::move(box->server);
  Py_BEGIN_ALLOW_THREADS
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::microseconds(static_cast<int64_t>(grace_s * 1e6)));
  server->Wait();
  server.reset();
  Py_END_ALLOW_THREADS
}

void server_capsule_free(PyObject* capsule) {
  auto* box = static_cast<ServerBox*>(PyCapsule_GetPointer(capsule, kServerCapsule));
  if (!box) return;
  stop_server(box, 0.0);
  box->service.reset();
  Py_XDECREF(box->handler);
  delete box;
}

PyObject* server_start(PyObject*, PyObject* args) {
  const char* addr;
  PyObject* handler;
  const char *cert = nullptr, *key = nullptr, *token = nullptr;
  Py_ssize_t cert_len = 0, key_len = 0;
  int max_receive, max_send, max_threads;
  PyObject* int_args;
  if (!PyArg_ParseTuple(args, "sOz#z#ziiiO", &addr, &handler, &cert, &cert_len, &key, &key_len, &token, &max_receive, &max_send,
                        &max_threads, &int_args))
    return nullptr;
  if (!PyCallable_Check(handler)) return PyErr_Format(PyExc_TypeError, "handler must be callable");
  if ((cert == nullptr) != (key == nullptr)) return PyErr_Format(PyExc_ValueError, "TLS needs both a certificate and a key");
  if (max_receive <= 0 || max_send <= 0 || max_threads < 2)
    return PyErr_Format(PyExc_ValueError, "max_receive and max_send must be > 0 and max_threads >= 2");
  grpc::ServerBuilder builder;
  if (!apply_int_args(int_args, [&](const std::string& name, int value) { builder.AddChannelArgument(name, value); })) return nullptr;

  auto* box = new ServerBox;
  box->handler = handler;
  Py_INCREF(handler);
  box->service = std::make_unique<StreamService>(handler, token ? std::string("Bearer ") + token : std::string());
  std::shared_ptr<grpc::ServerCredentials> creds;
  if (cert) {
    grpc::SslServerCredentialsOptions opts;
    opts.pem_key_cert_pairs.push_back({std::string(key, key_len), std::string(cert, cert_len)});
    creds = grpc::SslServerCredentials(opts);
  } else {
    creds = grpc::InsecureServerCredentials();
  }
  int port = 0;
  grpc::ResourceQuota quota("nessa-data-plane");
  quota.SetMaxThreads(max_threads);  // bounds the streams served at once (one thread each)
  builder.SetResourceQuota(quota);
  // A request longer than max_receive is refused from its length prefix, before it is buffered.
  builder.SetMaxReceiveMessageSize(max_receive);
  builder.SetMaxSendMessageSize(max_send);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);  // a taken port must fail, not be shared
  builder.AddListeningPort(addr, creds, &port);
  builder.RegisterService(box->service.get());
  Py_BEGIN_ALLOW_THREADS
  box->server = builder.BuildAndStart();
  Py_END_ALLOW_THREADS
  if (!box->server || port == 0) {
    stop_server(box, 0.0);
    box->service.reset();
    Py_DECREF(handler);
    delete box;
    return PyErr_Format(PyExc_ValueError, "cannot bind %s (port in use or not a local address)", addr);
  }
  PyObject* capsule = PyCapsule_New(box, kServerCapsule, server_capsule_free);
  if (!capsule) {
    stop_server(box, 0.0);
    Py_DECREF(handler);
    delete box;
    return nullptr;
  }
  return Py_BuildValue("(Ni)", capsule, port);
}

PyObject* server_stop(PyObject*, PyObject* args) {
  PyObject* capsule;
  double grace_s;
  if (!PyArg_ParseTuple(args, "Od", &capsule, &grace_s)) return nullptr;
  auto* box = static_cast<ServerBox*>(PyCapsule_GetPointer(capsule, kServerCapsule));
  if (!box) return nullptr;
  stop_server(box, grace_s < 0 ? 0.0 : grace_s);
  Py_RETURN_NONE;
}

// ---- client --------------------------------------------------------------------------------

struct ChannelBox {
  std::shared_ptr<grpc::Channel> channel;
};

void channel_capsule_free(PyObject* capsule) {
  delete static_cast<ChannelBox*>(PyCapsule_GetPointer(capsule, kChannelCapsule));
}

PyObject* channel_new(PyObject*, PyObject* args) {
  const char* target;
  const char *root = nullptr, *server_name = nullptr;
  Py_ssize_t root_len = 0;
  int max_message;
  PyObject* int_args;
  if (!PyArg_ParseTuple(args, "sz#ziO", &target, &root, &root_len, &server_name, &max_message, &int_args)) return nullptr;
  grpc::ChannelArguments chargs;
  if (!apply_int_args(int_args, [&](const std::string& name, int value) { chargs.SetInt(name, value); })) return nullptr;
  chargs.SetMaxReceiveMessageSize(max_message);
  chargs.SetMaxSendMessageSize(max_message);
  if (server_name) chargs.SetSslTargetNameOverride(server_name);
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (root) {
    grpc::SslCredentialsOptions opts;
    opts.pem_root_certs = std::string(root, root_len);
    creds = grpc::SslCredentials(opts);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  auto* box = new ChannelBox;
  Py_BEGIN_ALLOW_THREADS
  box->channel = grpc::CreateCustomChannel(target, creds, chargs);
  Py_END_ALLOW_THREADS
  PyObject* capsule = PyCapsule_New(box, kChannelCapsule, channel_capsule_free);
  if (!capsule) delete box;
  return capsule;
}

struct CallBox {
  std::shared_ptr<grpc::Channel> channel;
  std::string method_name;
  std::unique_ptr<grpc::internal::RpcMethod> method;
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<grpc::ByteBuffer>> reader;  // made by the first call_next
  std::string request;
  grpc::Status status;
  bool finished = false;
};

// Ends the call (cancelling it if still open) so that its reader may be destroyed.
void finish_call(CallBox* box, bool cancel) {
  if (box->finished || !box->reader) return;
  if (cancel) box->context.TryCancel();
  grpc::ByteBuffer drain;
  while (box->reader->Read(&drain)) drain.Clear();
  box->status = box->reader->Finish();
  box->finished = true;
}

void call_capsule_free(PyObject* capsule) {
  auto* box = static_cast<CallBox*>(PyCapsule_GetPointer(capsule, kCallCapsule));
  if (!box) return;
  Py_BEGIN_ALLOW_THREADS
  finish_call(box, true);
  box->reader.reset();
  Py_END_ALLOW_THREADS
  delete box;
}

PyObject* call_start(PyObject*, PyObject* args) {
  PyObject *channel_capsule, *metadata;
  const char* method;
  const char* request;
  Py_ssize_t request_len;
  double timeout_s;
  if (!PyArg_ParseTuple(args, "Osy#Od", &channel_capsule, &method, &request, &request_len, &metadata, &timeout_s)) return nullptr;
  auto* channel = static_cast<ChannelBox*>(PyCapsule_GetPointer(channel_capsule, kChannelCapsule));
  if (!channel) return nullptr;
  PyObject* seq = PySequence_Fast(metadata, "metadata must be a sequence of (key, value) pairs");
  if (!seq) return nullptr;
  auto box = std::make_unique<CallBox>();
  for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); ++i) {
    const char *k, *v;
    if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "ss", &k, &v)) {
      Py_DECREF(seq);
      return nullptr;
    }
    box->context.AddMetadata(k, v);
  }
  Py_DECREF(seq);
  if (timeout_s > 0) box->context.set_deadline(std::chrono::system_clock::now() + std::chrono::microseconds(static_cast<int64_t>(timeout_s * 1e6)));
  box->channel = channel->channel;
  box->method_name = method;
  box->method = std::make_unique<grpc::internal::RpcMethod>(box->method_name.c_str(), grpc::internal::RpcMethod::SERVER_STREAMING);
  // Copied (requests are small) and sent by the first call_next: creating the reader blocks
  // until the request is on its way, i.e. while the channel connects, and a caller's idle
  // deadline must be able to cancel that wait too (call_cancel works before the call starts).
  box->request.assign(request, static_cast<size_t>(request_len));
  PyObject* capsule = PyCapsule_New(box.get(), kCallCapsule, call_capsule_free);
  if (capsule) box.release();
  return capsule;
}

PyObject* call_next(PyObject*, PyObject* args) {
  PyObject* capsule;
  if (!PyArg_ParseTuple(args, "O", &capsule)) return nullptr;
  auto* box = static_cast<CallBox*>(PyCapsule_GetPointer(capsule, kCallCapsule));
  if (!box) return nullptr;
  if (box->finished) Py_RETURN_NONE;
  grpc::ByteBuffer message;
  bool got;
  Py_BEGIN_ALLOW_THREADS
  if (!box->reader) {
    grpc::Slice slice(box->request.data(), box->request.size());
    grpc::ByteBuffer req(&slice, 1);
    box->reader.reset(grpc::internal::ClientReaderFactory<grpc::ByteBuffer>::Create(box->channel.get(), *box->method, &box->context, req));
  }
  got = box->reader->Read(&message);
  if (!got) finish_call(box, false);
  Py_END_ALLOW_THREADS
  if (!got) Py_RETURN_NONE;
  std::vector<grpc::Slice> parts;
  if (!message.Dump(&parts).ok()) return PyErr_Format(PyExc_RuntimeError, "cannot read a received message");
  PyObject* out = PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(message.Length()));
  if (!out) return nullptr;
  char* dst = PyBytes_AS_STRING(out);
  Py_BEGIN_ALLOW_THREADS  // `out` is ours alone until we return it
  for (const auto& s : parts) {
    std::memcpy(dst, s.begin(), s.size());
    dst += s.size();
  }
  parts.clear();
  message.Clear();
  Py_END_ALLOW_THREADS
  return out;
}

PyObject* call_finish(PyObject*, PyObject* args) {
  PyObject* capsule;
  if (!PyArg_ParseTuple(args, "O", &capsule)) return nullptr;
  auto* box = static_cast<CallBox*>(PyCapsule_GetPointer(capsule, kCallCapsule));
  if (!box) return nullptr;
  if (!box->finished) return PyErr_Format(PyExc_RuntimeError, "call_finish before the stream ended");
  const std::string& details = box->status.error_message();
  return Py_BuildValue("(is#)", static_cast<int>(box->status.error_code()), details.data(), static_cast<Py_ssize_t>(details.size()));
}

PyObject* call_cancel(PyObject*, PyObject* args) {
  PyObject* capsule;
  if (!PyArg_ParseTuple(args, "O", &capsule)) return nullptr;
  auto* box = static_cast<CallBox*>(PyCapsule_GetPointer(capsule, kCallCapsule));
  if (!box) return nullptr;
  box->context.TryCancel();
  Py_RETURN_NONE;
}

PyMethodDef kMethods[] = {
    {"server_start", server_start, METH_VARARGS, "Start a StreamSamples server: (capsule, port)."},
    {"server_stop", server_stop, METH_VARARGS, "Stop a server; calls in flight get grace_s seconds."},
    {"channel_new", channel_new, METH_VARARGS, "A channel to a StreamSamples server."},
    {"call_start", call_start, METH_VARARGS, "Start a server-streaming call."},
    {"call_next", call_next, METH_VARARGS, "Next message as bytes, None at the end."},
    {"call_finish", call_finish, METH_VARARGS, "(code, details) of an ended call."},
    {"call_cancel", call_cancel, METH_VARARGS, "Cancel a call (thread-safe)."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef kModule = {PyModuleDef_HEAD_INIT, "_native_stream", "StreamSamples on gRPC C++ (see _data_plane.py).", -1, kMethods};

}  // namespace

PyMODINIT_FUNC PyInit__native_stream(void) {
  PyObject* m = PyModule_Create(&kModule);
  if (m) PyModule_AddStringConstant(m, "STREAM_METHOD", kStreamMethod);
  return m;
}
