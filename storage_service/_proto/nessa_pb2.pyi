from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Strategy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STRATEGY_UNSPECIFIED: _ClassVar[Strategy]
    STRATEGY_FULL: _ClassVar[Strategy]
    STRATEGY_RANDOM: _ClassVar[Strategy]
    STRATEGY_CRAIG: _ClassVar[Strategy]
    STRATEGY_NESSA_PA: _ClassVar[Strategy]
    STRATEGY_CREST: _ClassVar[Strategy]
    STRATEGY_NESSA_SS: _ClassVar[Strategy]
    STRATEGY_MAX_LOSS: _ClassVar[Strategy]
    STRATEGY_ADACORE: _ClassVar[Strategy]
    STRATEGY_ADACORE_PA: _ClassVar[Strategy]
    STRATEGY_PDD: _ClassVar[Strategy]
    STRATEGY_SAS: _ClassVar[Strategy]
    STRATEGY_CLIPCOV: _ClassVar[Strategy]
    STRATEGY_SAS_FL: _ClassVar[Strategy]

class Backend(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BACKEND_UNSPECIFIED: _ClassVar[Backend]
    BACKEND_CPU: _ClassVar[Backend]
    BACKEND_EMU: _ClassVar[Backend]
    BACKEND_XRT: _ClassVar[Backend]

class SelectionState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SELECTION_STATE_UNSPECIFIED: _ClassVar[SelectionState]
    SELECTION_STATE_RUNNING: _ClassVar[SelectionState]
    SELECTION_STATE_DONE: _ClassVar[SelectionState]
    SELECTION_STATE_FAILED: _ClassVar[SelectionState]

class DistillMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DISTILL_METHOD_UNSPECIFIED: _ClassVar[DistillMethod]
    DISTILL_METHOD_DM: _ClassVar[DistillMethod]
    DISTILL_METHOD_DC: _ClassVar[DistillMethod]
    DISTILL_METHOD_RANDOM: _ClassVar[DistillMethod]

class DistillState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DISTILL_STATE_UNSPECIFIED: _ClassVar[DistillState]
    DISTILL_STATE_RUNNING: _ClassVar[DistillState]
    DISTILL_STATE_DONE: _ClassVar[DistillState]
    DISTILL_STATE_FAILED: _ClassVar[DistillState]
    DISTILL_STATE_STOPPED: _ClassVar[DistillState]

class EmbedState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EMBED_STATE_UNSPECIFIED: _ClassVar[EmbedState]
    EMBED_STATE_RUNNING: _ClassVar[EmbedState]
    EMBED_STATE_DONE: _ClassVar[EmbedState]
    EMBED_STATE_FAILED: _ClassVar[EmbedState]
    EMBED_STATE_STOPPED: _ClassVar[EmbedState]
STRATEGY_UNSPECIFIED: Strategy
STRATEGY_FULL: Strategy
STRATEGY_RANDOM: Strategy
STRATEGY_CRAIG: Strategy
STRATEGY_NESSA_PA: Strategy
STRATEGY_CREST: Strategy
STRATEGY_NESSA_SS: Strategy
STRATEGY_MAX_LOSS: Strategy
STRATEGY_ADACORE: Strategy
STRATEGY_ADACORE_PA: Strategy
STRATEGY_PDD: Strategy
STRATEGY_SAS: Strategy
STRATEGY_CLIPCOV: Strategy
STRATEGY_SAS_FL: Strategy
BACKEND_UNSPECIFIED: Backend
BACKEND_CPU: Backend
BACKEND_EMU: Backend
BACKEND_XRT: Backend
SELECTION_STATE_UNSPECIFIED: SelectionState
SELECTION_STATE_RUNNING: SelectionState
SELECTION_STATE_DONE: SelectionState
SELECTION_STATE_FAILED: SelectionState
DISTILL_METHOD_UNSPECIFIED: DistillMethod
DISTILL_METHOD_DM: DistillMethod
DISTILL_METHOD_DC: DistillMethod
DISTILL_METHOD_RANDOM: DistillMethod
DISTILL_STATE_UNSPECIFIED: DistillState
DISTILL_STATE_RUNNING: DistillState
DISTILL_STATE_DONE: DistillState
DISTILL_STATE_FAILED: DistillState
DISTILL_STATE_STOPPED: DistillState
EMBED_STATE_UNSPECIFIED: EmbedState
EMBED_STATE_RUNNING: EmbedState
EMBED_STATE_DONE: EmbedState
EMBED_STATE_FAILED: EmbedState
EMBED_STATE_STOPPED: EmbedState

class GetServerInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ServerInfo(_message.Message):
    __slots__ = ("data_port", "batch_version", "max_push_chunk_bytes")
    DATA_PORT_FIELD_NUMBER: _ClassVar[int]
    BATCH_VERSION_FIELD_NUMBER: _ClassVar[int]
    MAX_PUSH_CHUNK_BYTES_FIELD_NUMBER: _ClassVar[int]
    data_port: int
    batch_version: int
    max_push_chunk_bytes: int
    def __init__(self, data_port: _Optional[int] = ..., batch_version: _Optional[int] = ..., max_push_chunk_bytes: _Optional[int] = ...) -> None: ...

class ListDatasetsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListDatasetsResponse(_message.Message):
    __slots__ = ("datasets",)
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    datasets: _containers.RepeatedCompositeFieldContainer[DatasetInfo]
    def __init__(self, datasets: _Optional[_Iterable[_Union[DatasetInfo, _Mapping]]] = ...) -> None: ...

class GetDatasetRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DatasetInfo(_message.Message):
    __slots__ = ("name", "num_samples", "num_classes", "class_names", "class_counts", "sample_shape", "dtype", "format_version", "columns")
    NAME_FIELD_NUMBER: _ClassVar[int]
    NUM_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    NUM_CLASSES_FIELD_NUMBER: _ClassVar[int]
    CLASS_NAMES_FIELD_NUMBER: _ClassVar[int]
    CLASS_COUNTS_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_SHAPE_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    FORMAT_VERSION_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    name: str
    num_samples: int
    num_classes: int
    class_names: _containers.RepeatedScalarFieldContainer[str]
    class_counts: _containers.RepeatedScalarFieldContainer[int]
    sample_shape: _containers.RepeatedScalarFieldContainer[int]
    dtype: str
    format_version: int
    columns: _containers.RepeatedCompositeFieldContainer[ColumnInfo]
    def __init__(self, name: _Optional[str] = ..., num_samples: _Optional[int] = ..., num_classes: _Optional[int] = ..., class_names: _Optional[_Iterable[str]] = ..., class_counts: _Optional[_Iterable[int]] = ..., sample_shape: _Optional[_Iterable[int]] = ..., dtype: _Optional[str] = ..., format_version: _Optional[int] = ..., columns: _Optional[_Iterable[_Union[ColumnInfo, _Mapping]]] = ...) -> None: ...

class ColumnInfo(_message.Message):
    __slots__ = ("name", "kind", "dtype", "dim", "max_bytes", "source")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    DIM_FIELD_NUMBER: _ClassVar[int]
    MAX_BYTES_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    dtype: str
    dim: int
    max_bytes: int
    source: str
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ..., dtype: _Optional[str] = ..., dim: _Optional[int] = ..., max_bytes: _Optional[int] = ..., source: _Optional[str] = ...) -> None: ...

class ModelHeader(_message.Message):
    __slots__ = ("arch", "version", "size", "sha256", "dataset")
    ARCH_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    arch: str
    version: int
    size: int
    sha256: str
    dataset: str
    def __init__(self, arch: _Optional[str] = ..., version: _Optional[int] = ..., size: _Optional[int] = ..., sha256: _Optional[str] = ..., dataset: _Optional[str] = ...) -> None: ...

class PushModelChunk(_message.Message):
    __slots__ = ("header", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: ModelHeader
    data: bytes
    def __init__(self, header: _Optional[_Union[ModelHeader, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("arch", "version", "size", "sha256", "datasets")
    ARCH_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    arch: str
    version: int
    size: int
    sha256: str
    datasets: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, arch: _Optional[str] = ..., version: _Optional[int] = ..., size: _Optional[int] = ..., sha256: _Optional[str] = ..., datasets: _Optional[_Iterable[str]] = ...) -> None: ...

class SelectRequest(_message.Message):
    __slots__ = ("dataset", "strategy", "fraction", "seed", "model_version", "backend", "no_wait", "batch_size", "num_batches", "pool_size", "run", "drop_threshold", "watch", "min_keep", "embedding_column", "text_embedding_column", "latent_classes")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    FRACTION_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    NO_WAIT_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    NUM_BATCHES_FIELD_NUMBER: _ClassVar[int]
    POOL_SIZE_FIELD_NUMBER: _ClassVar[int]
    RUN_FIELD_NUMBER: _ClassVar[int]
    DROP_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    WATCH_FIELD_NUMBER: _ClassVar[int]
    MIN_KEEP_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_COLUMN_FIELD_NUMBER: _ClassVar[int]
    TEXT_EMBEDDING_COLUMN_FIELD_NUMBER: _ClassVar[int]
    LATENT_CLASSES_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    strategy: Strategy
    fraction: float
    seed: int
    model_version: int
    backend: Backend
    no_wait: bool
    batch_size: int
    num_batches: int
    pool_size: int
    run: str
    drop_threshold: float
    watch: int
    min_keep: float
    embedding_column: str
    text_embedding_column: str
    latent_classes: int
    def __init__(self, dataset: _Optional[str] = ..., strategy: _Optional[_Union[Strategy, str]] = ..., fraction: _Optional[float] = ..., seed: _Optional[int] = ..., model_version: _Optional[int] = ..., backend: _Optional[_Union[Backend, str]] = ..., no_wait: _Optional[bool] = ..., batch_size: _Optional[int] = ..., num_batches: _Optional[int] = ..., pool_size: _Optional[int] = ..., run: _Optional[str] = ..., drop_threshold: _Optional[float] = ..., watch: _Optional[int] = ..., min_keep: _Optional[float] = ..., embedding_column: _Optional[str] = ..., text_embedding_column: _Optional[str] = ..., latent_classes: _Optional[int] = ...) -> None: ...

class GetSelectionRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class SelectionInfo(_message.Message):
    __slots__ = ("id", "dataset", "strategy", "fraction", "seed", "model_version", "backend", "state", "num_selected", "class_counts", "objective", "seconds", "error", "batch_size", "num_batches", "num_dropped", "num_forwarded", "embedding_column", "text_embedding_column", "latent_classes")
    ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    FRACTION_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    NUM_SELECTED_FIELD_NUMBER: _ClassVar[int]
    CLASS_COUNTS_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    NUM_BATCHES_FIELD_NUMBER: _ClassVar[int]
    NUM_DROPPED_FIELD_NUMBER: _ClassVar[int]
    NUM_FORWARDED_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_COLUMN_FIELD_NUMBER: _ClassVar[int]
    TEXT_EMBEDDING_COLUMN_FIELD_NUMBER: _ClassVar[int]
    LATENT_CLASSES_FIELD_NUMBER: _ClassVar[int]
    id: str
    dataset: str
    strategy: Strategy
    fraction: float
    seed: int
    model_version: int
    backend: Backend
    state: SelectionState
    num_selected: int
    class_counts: _containers.RepeatedScalarFieldContainer[int]
    objective: float
    seconds: float
    error: str
    batch_size: int
    num_batches: int
    num_dropped: int
    num_forwarded: int
    embedding_column: str
    text_embedding_column: str
    latent_classes: int
    def __init__(self, id: _Optional[str] = ..., dataset: _Optional[str] = ..., strategy: _Optional[_Union[Strategy, str]] = ..., fraction: _Optional[float] = ..., seed: _Optional[int] = ..., model_version: _Optional[int] = ..., backend: _Optional[_Union[Backend, str]] = ..., state: _Optional[_Union[SelectionState, str]] = ..., num_selected: _Optional[int] = ..., class_counts: _Optional[_Iterable[int]] = ..., objective: _Optional[float] = ..., seconds: _Optional[float] = ..., error: _Optional[str] = ..., batch_size: _Optional[int] = ..., num_batches: _Optional[int] = ..., num_dropped: _Optional[int] = ..., num_forwarded: _Optional[int] = ..., embedding_column: _Optional[str] = ..., text_embedding_column: _Optional[str] = ..., latent_classes: _Optional[int] = ...) -> None: ...

class StreamSamplesRequest(_message.Message):
    __slots__ = ("dataset", "selection", "fraction", "epoch", "seed", "rank", "world_size", "start_offset", "batch_bytes", "columns")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    SELECTION_FIELD_NUMBER: _ClassVar[int]
    FRACTION_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    WORLD_SIZE_FIELD_NUMBER: _ClassVar[int]
    START_OFFSET_FIELD_NUMBER: _ClassVar[int]
    BATCH_BYTES_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    selection: str
    fraction: float
    epoch: int
    seed: int
    rank: int
    world_size: int
    start_offset: int
    batch_bytes: int
    columns: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, dataset: _Optional[str] = ..., selection: _Optional[str] = ..., fraction: _Optional[float] = ..., epoch: _Optional[int] = ..., seed: _Optional[int] = ..., rank: _Optional[int] = ..., world_size: _Optional[int] = ..., start_offset: _Optional[int] = ..., batch_bytes: _Optional[int] = ..., columns: _Optional[_Iterable[str]] = ...) -> None: ...

class BatchHeader(_message.Message):
    __slots__ = ("selection_id", "epoch", "offset", "count", "total", "padding")
    SELECTION_ID_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    PADDING_FIELD_NUMBER: _ClassVar[int]
    selection_id: str
    epoch: int
    offset: int
    count: int
    total: int
    padding: bytes
    def __init__(self, selection_id: _Optional[str] = ..., epoch: _Optional[int] = ..., offset: _Optional[int] = ..., count: _Optional[int] = ..., total: _Optional[int] = ..., padding: _Optional[bytes] = ...) -> None: ...

class SampleBatch(_message.Message):
    __slots__ = ("header", "body")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    header: BatchHeader
    body: bytes
    def __init__(self, header: _Optional[_Union[BatchHeader, _Mapping]] = ..., body: _Optional[bytes] = ...) -> None: ...

class DistillRequest(_message.Message):
    __slots__ = ("dataset", "out", "method", "stages", "ipc", "seed", "iterations", "soft_labels", "teacher_epochs", "label_temperature", "view_epochs", "view_seeds", "view_augment")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    OUT_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    STAGES_FIELD_NUMBER: _ClassVar[int]
    IPC_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    ITERATIONS_FIELD_NUMBER: _ClassVar[int]
    SOFT_LABELS_FIELD_NUMBER: _ClassVar[int]
    TEACHER_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    LABEL_TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    VIEW_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    VIEW_SEEDS_FIELD_NUMBER: _ClassVar[int]
    VIEW_AUGMENT_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    out: str
    method: DistillMethod
    stages: int
    ipc: int
    seed: int
    iterations: int
    soft_labels: bool
    teacher_epochs: int
    label_temperature: float
    view_epochs: int
    view_seeds: _containers.RepeatedScalarFieldContainer[int]
    view_augment: str
    def __init__(self, dataset: _Optional[str] = ..., out: _Optional[str] = ..., method: _Optional[_Union[DistillMethod, str]] = ..., stages: _Optional[int] = ..., ipc: _Optional[int] = ..., seed: _Optional[int] = ..., iterations: _Optional[int] = ..., soft_labels: _Optional[bool] = ..., teacher_epochs: _Optional[int] = ..., label_temperature: _Optional[float] = ..., view_epochs: _Optional[int] = ..., view_seeds: _Optional[_Iterable[int]] = ..., view_augment: _Optional[str] = ...) -> None: ...

class GetDistillationRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DistillationInfo(_message.Message):
    __slots__ = ("name", "source", "method", "stages", "ipc", "seed", "iterations", "state", "stages_done", "step", "steps_total", "stage_datasets", "cpu_seconds", "error", "resumed_from", "soft_labels", "view_epochs")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    STAGES_FIELD_NUMBER: _ClassVar[int]
    IPC_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    ITERATIONS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STAGES_DONE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    STEPS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    STAGE_DATASETS_FIELD_NUMBER: _ClassVar[int]
    CPU_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESUMED_FROM_FIELD_NUMBER: _ClassVar[int]
    SOFT_LABELS_FIELD_NUMBER: _ClassVar[int]
    VIEW_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    name: str
    source: str
    method: DistillMethod
    stages: int
    ipc: int
    seed: int
    iterations: int
    state: DistillState
    stages_done: int
    step: int
    steps_total: int
    stage_datasets: _containers.RepeatedScalarFieldContainer[str]
    cpu_seconds: float
    error: str
    resumed_from: int
    soft_labels: bool
    view_epochs: int
    def __init__(self, name: _Optional[str] = ..., source: _Optional[str] = ..., method: _Optional[_Union[DistillMethod, str]] = ..., stages: _Optional[int] = ..., ipc: _Optional[int] = ..., seed: _Optional[int] = ..., iterations: _Optional[int] = ..., state: _Optional[_Union[DistillState, str]] = ..., stages_done: _Optional[int] = ..., step: _Optional[int] = ..., steps_total: _Optional[int] = ..., stage_datasets: _Optional[_Iterable[str]] = ..., cpu_seconds: _Optional[float] = ..., error: _Optional[str] = ..., resumed_from: _Optional[int] = ..., soft_labels: _Optional[bool] = ..., view_epochs: _Optional[int] = ...) -> None: ...

class EmbedRequest(_message.Message):
    __slots__ = ("dataset", "column", "model_version", "tower", "batch_size", "overwrite", "dtype")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    TOWER_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    OVERWRITE_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    column: str
    model_version: int
    tower: str
    batch_size: int
    overwrite: bool
    dtype: str
    def __init__(self, dataset: _Optional[str] = ..., column: _Optional[str] = ..., model_version: _Optional[int] = ..., tower: _Optional[str] = ..., batch_size: _Optional[int] = ..., overwrite: _Optional[bool] = ..., dtype: _Optional[str] = ...) -> None: ...

class GetEmbeddingRequest(_message.Message):
    __slots__ = ("dataset", "column")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    column: str
    def __init__(self, dataset: _Optional[str] = ..., column: _Optional[str] = ...) -> None: ...

class EmbeddingInfo(_message.Message):
    __slots__ = ("dataset", "column", "model_version", "tower", "state", "rows_done", "rows_total", "dim", "seconds", "error", "resumed_from")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    TOWER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ROWS_DONE_FIELD_NUMBER: _ClassVar[int]
    ROWS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    DIM_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESUMED_FROM_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    column: str
    model_version: int
    tower: str
    state: EmbedState
    rows_done: int
    rows_total: int
    dim: int
    seconds: float
    error: str
    resumed_from: int
    def __init__(self, dataset: _Optional[str] = ..., column: _Optional[str] = ..., model_version: _Optional[int] = ..., tower: _Optional[str] = ..., state: _Optional[_Union[EmbedState, str]] = ..., rows_done: _Optional[int] = ..., rows_total: _Optional[int] = ..., dim: _Optional[int] = ..., seconds: _Optional[float] = ..., error: _Optional[str] = ..., resumed_from: _Optional[int] = ...) -> None: ...
