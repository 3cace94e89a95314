"""The job-style calls of ``StorageClient``: start work the storage host runs on its own, then
follow it until it is done.

A selection, an embedding column and a distillation each take longer than one RPC may wait,
so each is a job on the server: ``select`` / ``embed`` / ``distill`` start it (or resume it,
or find it running: the calls are idempotent) and answer with its state, and
``get_selection`` / ``get_embedding`` / ``get_distillation`` read that state again.
``select`` and ``embed`` can wait: they poll with a doubling delay until the job leaves
"running", then raise ``SelectionFailed`` / ``EmbedFailed`` for a failed job and
DEADLINE_EXCEEDED when it is still running at their deadline. ``distill`` never waits (the
CLI follows it with ``get_distillation``).

``JobCalls`` is a mixin of ``storage_service.client.StorageClient``, which gives it the
plumbing: ``_call`` (a unary call with retries), ``_unary`` (a unary method by name), the
``_select`` / ``_get_sel`` methods and the client's ``timeout``. Client side: this module
imports no server module.
"""

from __future__ import annotations

import time
from typing import Callable

import grpc

from storage_service._client_types import (
    EmbedFailed,
    EmbeddingInfo,
    SelectionFailed,
    SelectionInfo,
    StorageError,
    _embedding,
    _select_request,
    _selection,
)
from storage_service._proto import nessa_pb2 as pb

__all__ = ["JobCalls"]

#: First delay between two polls of a job, doubled after each poll up to a cap per job kind.
_FIRST_POLL_DELAY = 0.05


def _poll_while_running(info, refresh: Callable[[], object], *, limit: float | None, max_delay: float, running: str,
                        on_poll: Callable[[object], None] | None = None):
    """``refresh()`` until the job's ``state`` leaves "running"; returns its last info.

    Raises StorageError DEADLINE_EXCEEDED with ``running`` as message when the next sleep would
    pass ``limit`` (a ``time.monotonic()`` value; None: no limit). ``on_poll`` sees each new info.
    """
    delay = _FIRST_POLL_DELAY
    while info.state == "running":
        if limit is not None and time.monotonic() + delay > limit:
            raise StorageError(grpc.StatusCode.DEADLINE_EXCEEDED, running)
        time.sleep(delay)
        delay = min(delay * 2, max_delay)
        info = refresh()
        if on_poll is not None:
            on_poll(info)
    return info


class JobCalls:
    """Selections, embedding columns and distillations (module docs); mixed into StorageClient."""

    timeout: float

    def select(
        self,
        dataset: str,
        strategy: str,
        fraction: float = 1.0,
        *,
        seed: int = 0,
        model_version: int | None = None,
        backend: str = "cpu",
        wait: bool = True,
        timeout: float | None = None,
        batch_size: int = 0,
        num_batches: int = 0,
        pool_size: int = 0,
        run: str = "",
        drop_threshold: float = 0.0,
        watch: int = 0,
        min_keep: float = 0.0,
        embedding_column: str = "",
        text_embedding_column: str = "",
        latent_classes: int = 0,
    ) -> SelectionInfo:
        """Select a subset (see module docs).

        Embedding strategies (``sas``, ``clipcov``): ``embedding_column`` (e.g. ``emb/proxy``;
        clipcov: the image column) and, for clipcov, ``text_embedding_column``; ``latent_classes``
        k-means classes (0: the data set's labels when it has more than one class, else 10).

        Mini-batch strategies (``nessa-pa``, ``crest``): ``batch_size`` rows per mini-batch
        (0: 128), ``num_batches`` mini-batches (0: 5), ``pool_size`` candidates per pool
        (0: nessa-pa ``batch_size / fraction``, crest ``max(1% of the data, 2 * batch_size)``);
        the selection streams in order. Model-based strategies: ``run`` names the training run
        whose loss history the server keeps; ``drop_threshold`` > 0 (needs ``run``; ``nessa-ss``
        needs it) drops examples whose loss stayed under it for ``watch`` (0: 3) consecutive
        selections, never below ``min_keep`` (0: 0.5) of the data set. 0 / "" mean the default.

        With ``wait``, block until the selection is done: each call waits at most the client's
        ``timeout`` (the server answers RUNNING before that deadline) and the client polls
        GetSelection until done, for ``timeout`` seconds in all (default: the client's timeout).
        Raises SelectionFailed if the server could not compute it, DEADLINE_EXCEEDED if it is
        still running after ``timeout``.
        """
        request = _select_request(dataset, strategy, fraction, seed=seed, model_version=model_version, backend=backend,
                                  wait=wait, batch_size=batch_size, num_batches=num_batches, pool_size=pool_size,
                                  run=run, drop_threshold=drop_threshold, watch=watch, min_keep=min_keep)
        if isinstance(latent_classes, bool) or not isinstance(latent_classes, int) or not 0 <= latent_classes < 2**32:
            raise ValueError(f"latent_classes must be an integer >= 0 (0: the server's default), got {latent_classes!r}")
        request.embedding_column, request.text_embedding_column = str(embedding_column), str(text_embedding_column)
        request.latent_classes = latent_classes
        limit = time.monotonic() + (timeout if timeout is not None else self.timeout)
        info = _selection(self._call(self._select, request))
        if not wait:
            return info
        info = _poll_while_running(info, lambda: self.get_selection(info.id), limit=limit, max_delay=2.0,
                                   running=f"selection {info.id} still running after {timeout or self.timeout}s")
        if info.state == "failed":
            raise SelectionFailed(info)
        return info

    def get_selection(self, id: str) -> SelectionInfo:
        return _selection(self._call(self._get_sel, pb.GetSelectionRequest(id=id)))

    def distill(self, dataset: str, out: str, *, method: str = "dm", stages: int = 1, ipc: int = 10, seed: int = 0,
                iterations: int = 0, labels: str = "hard", teacher_epochs: int = 0,
                label_temperature: float = 0.0, view_epochs: int = 0, view_seeds=(),
                view_augment: str = "") -> "pb.DistillationInfo":
        """Start (or resume, or find running) the distillation ``out`` of ``dataset`` on the
        storage host; answers at once with its ``DistillationInfo`` (poll ``get_distillation``).
        ``iterations`` 0: the server's default matching steps per stage. ``labels`` "soft": the
        stages also carry a teacher's probabilities (``teacher_epochs`` / ``label_temperature``
        0: the server's defaults); "views": soft, and the teacher's label of every view training
        seeds ``view_seeds`` draw with ``view_augment`` in ``view_epochs`` epochs."""
        methods = {"dm": pb.DISTILL_METHOD_DM, "dc": pb.DISTILL_METHOD_DC, "random": pb.DISTILL_METHOD_RANDOM}
        if method not in methods:
            raise ValueError(f"method: unknown distillation method {method!r}; choose dm, dc or random")
        if labels not in ("hard", "soft", "views"):
            raise ValueError(f"labels: unknown labels {labels!r}; choose hard, soft or views")
        views = labels == "views"
        req = pb.DistillRequest(dataset=dataset, out=out, method=methods[method], stages=stages, ipc=ipc, seed=seed,
                                iterations=iterations, soft_labels=labels != "hard", teacher_epochs=int(teacher_epochs),
                                label_temperature=float(label_temperature), view_epochs=int(view_epochs) if views else 0,
                                view_seeds=[int(s) for s in view_seeds] if views else [],
                                view_augment=view_augment if views else "")
        return self._call(self._unary("Distill", pb.DistillationInfo), req)

    def get_distillation(self, name: str) -> "pb.DistillationInfo":
        """A distillation's state and progress (NOT_FOUND if there is none)."""
        return self._call(self._unary("GetDistillation", pb.DistillationInfo), pb.GetDistillationRequest(name=name))

    def embed(self, dataset: str, column: str, *, model_version: int = 0, tower: str = "image", batch_size: int = 0,
              overwrite: bool = False, dtype: str = "float16", wait: bool = True, progress: bool = False,
              timeout: float | None = None) -> EmbeddingInfo:
        """Compute the embedding column ``column`` (``emb/...``) of ``dataset`` on the storage
        host with pushed model ``model_version`` (0: the newest that fits), ``tower`` "image" or
        "text" (the data set's captions). Starts, resumes or finds running the job; with
        ``wait`` polls until it is done (``progress``: a tqdm bar of rows), raising EmbedFailed
        if it failed and DEADLINE_EXCEEDED after ``timeout`` seconds (None: no limit)."""
        req = pb.EmbedRequest(dataset=dataset, column=column, model_version=int(model_version), tower=tower,
                              batch_size=int(batch_size), overwrite=bool(overwrite), dtype=dtype)
        info = _embedding(self._call(self._unary("Embed", pb.EmbeddingInfo), req))
        if not wait:
            return info
        from tqdm.auto import tqdm

        limit = None if timeout is None else time.monotonic() + timeout
        with tqdm(total=info.rows_total, initial=info.rows_done, disable=not progress, desc=column, unit="row") as bar:
            info = _poll_while_running(info, lambda: self.get_embedding(dataset, column), limit=limit, max_delay=1.0,
                                       running=f"embedding {dataset}:{column} still running after {timeout}s",
                                       on_poll=lambda new: bar.update(max(0, new.rows_done - bar.n)))
        if info.state == "failed":
            raise EmbedFailed(info)
        return info

    def get_embedding(self, dataset: str, column: str) -> EmbeddingInfo:
        """An embedding job's (or column's) state and progress (NOT_FOUND if neither exists)."""
        return _embedding(self._call(self._unary("GetEmbedding", pb.EmbeddingInfo),
                                     pb.GetEmbeddingRequest(dataset=dataset, column=column)))
