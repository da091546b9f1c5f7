/**
 * The OrtApi entries this backend calls, by their index in ONNX Runtime's `struct OrtApi` (a table
 * of function pointers whose order is the ABI: entries are only ever appended). The indices were
 * counted from `include/onnxruntime/core/session/onnxruntime_c_api.h` of ORT 1.29.0 (ORT_API_VERSION
 * 29) and checked against the offsets ORT itself asserts (ReleaseCustomOpDomain 101,
 * ReleaseModelMetadata 118, AddFreeDimensionOverrideByName 124, ReleaseAvailableProviders 126,
 * SetGlobalSpinControl 149, ReleaseArenaCfg 157, GetCurrentGpuDeviceId 161,
 * CreateSessionFromArrayWithPrepackedWeightsContainer 169).
 *
 * Each entry: [index, first ORT minor version that has it, koffi result type, koffi argument types],
 * with the C signature above it. Every pointer crosses as `void*` (koffi 3 passes pointers as
 * BigInt); out-parameters are `void*` too and receive a typed array (sync calls) or koffi-allocated
 * memory (async calls). Status-returning entries return an OrtStatus* (null on success).
 */

/** A native pointer (koffi 3: a BigInt address). */
export type Ptr = bigint;
/** An OrtStatus*: null on success. */
export type Status = Ptr | null;
/** Where a C function writes an out-parameter: a typed array (sync calls) or allocated memory. */
export type Out = BigUint64Array | BigInt64Array | Int32Array | Ptr;
type P = Ptr | null;

/** The ORT_API_VERSION of the header the indices come from. */
export const ORT_HEADER_API_VERSION = 29;
/** The oldest ORT whose OrtApi has every required entry (optional ones carry their own version). */
export const ORT_MIN_API_VERSION = 16;

/** TypeScript view of the bound entries (argument order and meaning as in C). */
export interface OrtRawApi {
  GetErrorCode(status: Ptr): number;
  GetErrorMessage(status: Ptr): string;
  ReleaseStatus(status: Ptr): void;
  CreateEnv(logSeverityLevel: number, logid: string, out: Out): Status;
  GetBuildInfoString(): string;
  GetAvailableProviders(out: Out, count: Out): Status;
  ReleaseAvailableProviders(names: Ptr, count: number): Status;

  CreateSessionOptions(out: Out): Status;
  ReleaseSessionOptions(options: P): void;
  SetSessionLogSeverityLevel(options: Ptr, level: number): Status;
  SetIntraOpNumThreads(options: Ptr, threads: number): Status;
  DisableCpuMemArena(options: Ptr): Status;
  DisableMemPattern(options: Ptr): Status;
  AddSessionConfigEntry(options: Ptr, key: string, value: string): Status;
  HasSessionConfigEntry(options: Ptr, key: string, out: Out): Status;
  SessionOptionsAppendExecutionProvider(options: Ptr, provider: string, keys: string[], values: string[], n: number): Status;
  CreateCUDAProviderOptions(out: Out): Status;
  UpdateCUDAProviderOptions(cuda: Ptr, keys: string[], values: string[], n: number): Status;
  SessionOptionsAppendExecutionProvider_CUDA_V2(options: Ptr, cuda: Ptr): Status;
  ReleaseCUDAProviderOptions(cuda: P): void;

  CreateSession(env: Ptr, modelPath: string, options: Ptr, out: Out): Status;
  CreateSessionFromArray(env: Ptr, data: Ptr, bytes: number, options: Ptr, out: Out): Status;
  ReleaseSession(session: P): void;
  SessionGetInputCount(session: Ptr, out: Out): Status;
  SessionGetOutputCount(session: Ptr, out: Out): Status;
  SessionGetInputName(session: Ptr, index: number, allocator: Ptr, out: Out): Status;
  SessionGetOutputName(session: Ptr, index: number, allocator: Ptr, out: Out): Status;
  SessionGetInputTypeInfo(session: Ptr, index: number, out: Out): Status;
  SessionGetOutputTypeInfo(session: Ptr, index: number, out: Out): Status;

  ReleaseTypeInfo(info: P): void;
  GetOnnxTypeFromTypeInfo(info: Ptr, out: Out): Status;
  CastTypeInfoToTensorInfo(info: Ptr, out: Out): Status;
  GetTensorElementType(info: Ptr, out: Out): Status;
  GetDimensionsCount(info: Ptr, out: Out): Status;
  GetDimensions(info: Ptr, dims: BigInt64Array, n: number): Status;
  GetSymbolicDimensions(info: Ptr, names: BigUint64Array, n: number): Status;
  GetTensorShapeElementCount(info: Ptr, out: Out): Status;
  GetTensorTypeAndShape(value: Ptr, out: Out): Status;
  ReleaseTensorTypeAndShapeInfo(info: P): void;

  GetAllocatorWithDefaultOptions(out: Out): Status;
  AllocatorFree(allocator: Ptr, p: Ptr): Status;
  CreateCpuMemoryInfo(allocatorType: number, memType: number, out: Out): Status;
  CreateMemoryInfo(name: string, allocatorType: number, id: number, memType: number, out: Out): Status;
  ReleaseMemoryInfo(info: P): void;
  MemoryInfoGetName(info: Ptr, out: Out): Status;
  MemoryInfoGetDeviceType(info: Ptr, out: Out): void;
  CreateAllocator(session: Ptr, info: Ptr, out: Out): Status;
  ReleaseAllocator(allocator: P): void;

  CreateTensorWithDataAsOrtValue(info: Ptr, data: P, bytes: number, shape: BigInt64Array, rank: number, type: number, out: Out): Status;
  CreateTensorAsOrtValue(allocator: Ptr, shape: BigInt64Array, rank: number, type: number, out: Out): Status;
  GetTensorMutableData(value: Ptr, out: Out): Status;
  GetTensorMemoryInfo(value: Ptr, out: Out): Status;
  ReleaseValue(value: P): void;
  CopyTensors(env: Ptr, src: BigUint64Array, dst: BigUint64Array, stream: P, n: number): Status;

  CreateRunOptions(out: Out): Status;
  ReleaseRunOptions(options: P): void;
  AddRunConfigEntry(options: Ptr, key: string, value: string): Status;
  CreateIoBinding(session: Ptr, out: Out): Status;
  ReleaseIoBinding(binding: P): void;
  BindInput(binding: Ptr, name: string, value: Ptr): Status;
  BindOutput(binding: Ptr, name: string, value: Ptr): Status;
  BindOutputToDevice(binding: Ptr, name: string, info: Ptr): Status;
  RunWithBinding(session: Ptr, runOptions: P, binding: Ptr): Status;
  GetBoundOutputValues(binding: Ptr, allocator: Ptr, out: Out, count: Out): Status;
  ClearBoundInputs(binding: Ptr): void;
  ClearBoundOutputs(binding: Ptr): void;
}

export type ApiEntry = readonly [index: number, since: number, result: string, args: readonly string[]];

const S = 'void*'; // OrtStatus* result
const V = 'void*';

export const ORT_API_TABLE: { readonly [K in keyof OrtRawApi]: ApiEntry } = {
  /** OrtErrorCode GetErrorCode(const OrtStatus* status) */
  GetErrorCode: [1, 1, 'int', [V]],
  /** const char* GetErrorMessage(const OrtStatus* status) */
  GetErrorMessage: [2, 1, 'const char*', [V]],
  /** OrtStatus* CreateEnv(OrtLoggingLevel log_severity_level, const char* logid, OrtEnv** out) */
  CreateEnv: [3, 1, S, ['int', 'const char*', V]],
  /** OrtStatus* CreateSession(const OrtEnv* env, const ORTCHAR_T* model_path, const OrtSessionOptions* options, OrtSession** out) */
  CreateSession: [7, 1, S, [V, 'const char*', V, V]],
  /** OrtStatus* CreateSessionFromArray(const OrtEnv* env, const void* model_data, size_t model_data_length, const OrtSessionOptions* options, OrtSession** out) */
  CreateSessionFromArray: [8, 1, S, [V, V, 'size_t', V, V]],
  /** OrtStatus* CreateSessionOptions(OrtSessionOptions** options) */
  CreateSessionOptions: [10, 1, S, [V]],
  /** OrtStatus* DisableMemPattern(OrtSessionOptions* options) */
  DisableMemPattern: [17, 1, S, [V]],
  /** OrtStatus* DisableCpuMemArena(OrtSessionOptions* options) */
  DisableCpuMemArena: [19, 1, S, [V]],
  /** OrtStatus* SetSessionLogSeverityLevel(OrtSessionOptions* options, int session_log_severity_level) */
  SetSessionLogSeverityLevel: [22, 1, S, [V, 'int']],
  /** OrtStatus* SetIntraOpNumThreads(OrtSessionOptions* options, int intra_op_num_threads) */
  SetIntraOpNumThreads: [24, 1, S, [V, 'int']],
  /** OrtStatus* SessionGetInputCount(const OrtSession* session, size_t* out) */
  SessionGetInputCount: [30, 1, S, [V, V]],
  /** OrtStatus* SessionGetOutputCount(const OrtSession* session, size_t* out) */
  SessionGetOutputCount: [31, 1, S, [V, V]],
  /** OrtStatus* SessionGetInputTypeInfo(const OrtSession* session, size_t index, OrtTypeInfo** type_info) */
  SessionGetInputTypeInfo: [33, 1, S, [V, 'size_t', V]],
  /** OrtStatus* SessionGetOutputTypeInfo(const OrtSession* session, size_t index, OrtTypeInfo** type_info) */
  SessionGetOutputTypeInfo: [34, 1, S, [V, 'size_t', V]],
  /** OrtStatus* SessionGetInputName(const OrtSession* session, size_t index, OrtAllocator* allocator, char** value) */
  SessionGetInputName: [36, 1, S, [V, 'size_t', V, V]],
  /** OrtStatus* SessionGetOutputName(const OrtSession* session, size_t index, OrtAllocator* allocator, char** value) */
  SessionGetOutputName: [37, 1, S, [V, 'size_t', V, V]],
  /** OrtStatus* CreateRunOptions(OrtRunOptions** out) */
  CreateRunOptions: [39, 1, S, [V]],
  /** OrtStatus* CreateTensorAsOrtValue(OrtAllocator* allocator, const int64_t* shape, size_t shape_len, ONNXTensorElementDataType type, OrtValue** out) */
  CreateTensorAsOrtValue: [48, 1, S, [V, V, 'size_t', 'int', V]],
  /** OrtStatus* CreateTensorWithDataAsOrtValue(const OrtMemoryInfo* info, void* p_data, size_t p_data_len, const int64_t* shape, size_t shape_len, ONNXTensorElementDataType type, OrtValue** out) */
  CreateTensorWithDataAsOrtValue: [49, 1, S, [V, V, 'size_t', V, 'size_t', 'int', V]],
  /** OrtStatus* GetTensorMutableData(OrtValue* value, void** out) */
  GetTensorMutableData: [51, 1, S, [V, V]],
  /** OrtStatus* CastTypeInfoToTensorInfo(const OrtTypeInfo* type_info, const OrtTensorTypeAndShapeInfo** out) */
  CastTypeInfoToTensorInfo: [55, 1, S, [V, V]],
  /** OrtStatus* GetOnnxTypeFromTypeInfo(const OrtTypeInfo* type_info, enum ONNXType* out) */
  GetOnnxTypeFromTypeInfo: [56, 1, S, [V, V]],
  /** OrtStatus* GetTensorElementType(const OrtTensorTypeAndShapeInfo* info, enum ONNXTensorElementDataType* out) */
  GetTensorElementType: [60, 1, S, [V, V]],
  /** OrtStatus* GetDimensionsCount(const OrtTensorTypeAndShapeInfo* info, size_t* out) */
  GetDimensionsCount: [61, 1, S, [V, V]],
  /** OrtStatus* GetDimensions(const OrtTensorTypeAndShapeInfo* info, int64_t* dim_values, size_t dim_values_length) */
  GetDimensions: [62, 1, S, [V, V, 'size_t']],
  /** OrtStatus* GetSymbolicDimensions(const OrtTensorTypeAndShapeInfo* info, const char* dim_params[], size_t dim_params_length) */
  GetSymbolicDimensions: [63, 1, S, [V, V, 'size_t']],
  /** OrtStatus* GetTensorShapeElementCount(const OrtTensorTypeAndShapeInfo* info, size_t* out) */
  GetTensorShapeElementCount: [64, 1, S, [V, V]],
  /** OrtStatus* GetTensorTypeAndShape(const OrtValue* value, OrtTensorTypeAndShapeInfo** out) */
  GetTensorTypeAndShape: [65, 1, S, [V, V]],
  /** OrtStatus* CreateMemoryInfo(const char* name, enum OrtAllocatorType type, int id, enum OrtMemType mem_type, OrtMemoryInfo** out) */
  CreateMemoryInfo: [68, 1, S, ['const char*', 'int', 'int', 'int', V]],
  /** OrtStatus* CreateCpuMemoryInfo(enum OrtAllocatorType type, enum OrtMemType mem_type, OrtMemoryInfo** out) */
  CreateCpuMemoryInfo: [69, 1, S, ['int', 'int', V]],
  /** OrtStatus* MemoryInfoGetName(const OrtMemoryInfo* ptr, const char** out) */
  MemoryInfoGetName: [71, 1, S, [V, V]],
  /** OrtStatus* AllocatorFree(OrtAllocator* ort_allocator, void* p) */
  AllocatorFree: [76, 1, S, [V, V]],
  /** OrtStatus* GetAllocatorWithDefaultOptions(OrtAllocator** out) */
  GetAllocatorWithDefaultOptions: [78, 1, S, [V]],
  /** void ReleaseStatus(OrtStatus*) */
  ReleaseStatus: [93, 1, 'void', [V]],
  /** void ReleaseMemoryInfo(OrtMemoryInfo*) */
  ReleaseMemoryInfo: [94, 1, 'void', [V]],
  /** void ReleaseSession(OrtSession*) */
  ReleaseSession: [95, 1, 'void', [V]],
  /** void ReleaseValue(OrtValue*) */
  ReleaseValue: [96, 1, 'void', [V]],
  /** void ReleaseRunOptions(OrtRunOptions*) */
  ReleaseRunOptions: [97, 1, 'void', [V]],
  /** void ReleaseTypeInfo(OrtTypeInfo*) */
  ReleaseTypeInfo: [98, 1, 'void', [V]],
  /** void ReleaseTensorTypeAndShapeInfo(OrtTensorTypeAndShapeInfo*) */
  ReleaseTensorTypeAndShapeInfo: [99, 1, 'void', [V]],
  /** void ReleaseSessionOptions(OrtSessionOptions*) */
  ReleaseSessionOptions: [100, 1, 'void', [V]],
  /** OrtStatus* GetAvailableProviders(char*** out_ptr, int* provider_length) */
  GetAvailableProviders: [125, 4, S, [V, V]],
  /** OrtStatus* ReleaseAvailableProviders(char** ptr, int providers_length) */
  ReleaseAvailableProviders: [126, 4, S, [V, 'int']],
  /** OrtStatus* AddSessionConfigEntry(OrtSessionOptions* options, const char* config_key, const char* config_value) */
  AddSessionConfigEntry: [130, 5, S, [V, 'const char*', 'const char*']],
  /** OrtStatus* CreateAllocator(const OrtSession* session, const OrtMemoryInfo* mem_info, OrtAllocator** out) */
  CreateAllocator: [131, 5, S, [V, V, V]],
  /** void ReleaseAllocator(OrtAllocator*) */
  ReleaseAllocator: [132, 5, 'void', [V]],
  /** OrtStatus* RunWithBinding(OrtSession* session, const OrtRunOptions* run_options, const OrtIoBinding* binding_ptr) */
  RunWithBinding: [133, 5, S, [V, V, V]],
  /** OrtStatus* CreateIoBinding(OrtSession* session, OrtIoBinding** out) */
  CreateIoBinding: [134, 5, S, [V, V]],
  /** void ReleaseIoBinding(OrtIoBinding*) */
  ReleaseIoBinding: [135, 5, 'void', [V]],
  /** OrtStatus* BindInput(OrtIoBinding* binding_ptr, const char* name, const OrtValue* val_ptr) */
  BindInput: [136, 5, S, [V, 'const char*', V]],
  /** OrtStatus* BindOutput(OrtIoBinding* binding_ptr, const char* name, const OrtValue* val_ptr) */
  BindOutput: [137, 5, S, [V, 'const char*', V]],
  /** OrtStatus* BindOutputToDevice(OrtIoBinding* binding_ptr, const char* name, const OrtMemoryInfo* mem_info_ptr) */
  BindOutputToDevice: [138, 5, S, [V, 'const char*', V]],
  /** OrtStatus* GetBoundOutputValues(const OrtIoBinding* binding_ptr, OrtAllocator* allocator, OrtValue*** output, size_t* output_count) */
  GetBoundOutputValues: [140, 5, S, [V, V, V, V]],
  /** void ClearBoundInputs(OrtIoBinding* binding_ptr) */
  ClearBoundInputs: [141, 5, 'void', [V]],
  /** void ClearBoundOutputs(OrtIoBinding* binding_ptr) */
  ClearBoundOutputs: [142, 5, 'void', [V]],
  /** OrtStatus* AddRunConfigEntry(OrtRunOptions* options, const char* config_key, const char* config_value) */
  AddRunConfigEntry: [165, 8, S, [V, 'const char*', 'const char*']],
  /** OrtStatus* GetTensorMemoryInfo(const OrtValue* value, const OrtMemoryInfo** mem_info) */
  GetTensorMemoryInfo: [194, 10, S, [V, V]],
  /** OrtStatus* SessionOptionsAppendExecutionProvider_CUDA_V2(OrtSessionOptions* options, const OrtCUDAProviderOptionsV2* cuda_options) */
  SessionOptionsAppendExecutionProvider_CUDA_V2: [204, 11, S, [V, V]],
  /** OrtStatus* CreateCUDAProviderOptions(OrtCUDAProviderOptionsV2** out) */
  CreateCUDAProviderOptions: [205, 11, S, [V]],
  /** OrtStatus* UpdateCUDAProviderOptions(OrtCUDAProviderOptionsV2* cuda_options, const char* const* provider_options_keys, const char* const* provider_options_values, size_t num_keys) */
  UpdateCUDAProviderOptions: [206, 11, S, [V, 'const char**', 'const char**', 'size_t']],
  /** void ReleaseCUDAProviderOptions(OrtCUDAProviderOptionsV2* input) */
  ReleaseCUDAProviderOptions: [208, 11, 'void', [V]],
  /** OrtStatus* SessionOptionsAppendExecutionProvider(OrtSessionOptions* options, const char* provider_name, const char* const* provider_options_keys, const char* const* provider_options_values, size_t num_keys) */
  SessionOptionsAppendExecutionProvider: [216, 12, S, [V, 'const char*', 'const char**', 'const char**', 'size_t']],
  /** void MemoryInfoGetDeviceType(const OrtMemoryInfo* ptr, OrtMemoryInfoDeviceType* out) */
  MemoryInfoGetDeviceType: [225, 14, 'void', [V, V]],
  /** OrtStatus* HasSessionConfigEntry(const OrtSessionOptions* options, const char* config_key, int* out) */
  HasSessionConfigEntry: [237, 14, S, [V, 'const char*', V]],
  /** const char* GetBuildInfoString(void) */
  GetBuildInfoString: [254, 15, 'const char*', []],
  /** OrtStatus* CopyTensors(const OrtEnv* env, const OrtValue* const* src_tensors, OrtValue* const* dst_tensors, OrtSyncStream* stream, size_t num_tensors) */
  CopyTensors: [386, 23, S, [V, V, V, V, 'size_t']],
};

/** Entries called off the main thread (koffi `.async`): they can take long (loading, running). */
export const ASYNC_ENTRIES = ['CreateSession', 'CreateSessionFromArray', 'RunWithBinding'] as const satisfies readonly (keyof OrtRawApi)[];

/** OrtErrorCode names (onnxruntime_c_api.h), for messages. */
export const ORT_ERROR_CODES = [
  'ORT_OK',
  'ORT_FAIL',
  'ORT_INVALID_ARGUMENT',
  'ORT_NO_SUCHFILE',
  'ORT_NO_MODEL',
  'ORT_ENGINE_ERROR',
  'ORT_RUNTIME_EXCEPTION',
  'ORT_INVALID_PROTOBUF',
  'ORT_MODEL_LOADED',
  'ORT_NOT_IMPLEMENTED',
  'ORT_INVALID_GRAPH',
  'ORT_EP_FAIL',
  'ORT_MODEL_LOAD_CANCELED',
  'ORT_MODEL_REQUIRES_COMPILATION',
  'ORT_NOT_FOUND',
  'ORT_DEVICE_RESET',
] as const;

/** Enum values used by the backend (onnxruntime_c_api.h). */
export const ORT_ENUM = {
  /** OrtAllocatorType */
  OrtDeviceAllocator: 0,
  OrtArenaAllocator: 1,
  /** OrtMemType */
  OrtMemTypeDefault: 0,
  /** OrtMemoryInfoDeviceType */
  DeviceCPU: 0,
  DeviceGPU: 1,
  /** ONNXType */
  ONNX_TYPE_TENSOR: 1,
} as const;
