# cython: language_level=3
#
# Cython declarations of lrcore's C++ API (lrcore/lrcore.hpp), so Cython code
# can call the kernels directly: no Python objects, no argument conversion,
# and without the GIL.
#
#     from lrcore.cpp cimport AdamConfig, AdamTensor, adam_step
#
#     cdef AdamConfig config            # torch defaults; set fields as needed
#     cdef AdamTensor[float] tensor     # pointers to your arrays, size, step
#     ...
#     with nogil:
#         adam_step(config, tensor)     # raises ValueError on bad arguments
#
# Build the extension as C++17 with lrcore.get_include() on the include path,
# and link lrcore.get_library() plus the thread library (-pthread); see
# docs/cpp.md, "Using lrcore from Cython".
#
# The C++ headers are the reference for every field and function: each name
# here is declared exactly as it is there. Functions marked `except +` turn
# C++ exceptions into Python ones (std::invalid_argument -> ValueError,
# std::runtime_error -> RuntimeError); they check everything before writing
# any array, so a raised call has changed nothing.

from libc.stdint cimport int64_t, uint8_t, uint64_t
from libcpp cimport bool
from libcpp.string cimport string
from libcpp.vector cimport vector


cdef extern from "lrcore/version.hpp":
    int LRCORE_VERSION_MAJOR
    int LRCORE_VERSION_MINOR
    int LRCORE_VERSION_PATCH


cdef extern from "lrcore/lrcore.hpp" namespace "lrcore" nogil:

    # --- config.hpp: hyperparameters (defaults are torch.optim's) ---------

    cdef cppclass SgdConfig:
        double lr
        double momentum
        double dampening
        double weight_decay
        bool nesterov
        bool maximize
        double grad_scale   # gradient factor applied first (1 = off)

    cdef cppclass AdagradConfig:
        double lr
        double lr_decay
        double weight_decay
        double eps
        bool maximize
        double grad_scale

    cdef cppclass RmspropConfig:
        double lr
        double alpha
        double eps
        double weight_decay
        double momentum
        bool centered
        bool maximize
        double grad_scale

    cdef cppclass AdamConfig:
        double lr
        double beta1
        double beta2
        double eps
        double weight_decay
        bool amsgrad
        bool maximize
        bool decoupled_weight_decay
        double grad_scale

    cdef cppclass AdafactorConfig:
        double lr
        double beta2_decay
        double eps1           # NaN (the default): the element type's machine epsilon
        double eps2
        double d
        double weight_decay
        bool maximize
        double grad_scale

    cdef cppclass NadamConfig:
        double lr
        double beta1
        double beta2
        double eps
        double weight_decay
        double momentum_decay
        bool decoupled_weight_decay
        bool maximize
        double grad_scale

    cdef cppclass RadamConfig:
        double lr
        double beta1
        double beta2
        double eps
        double weight_decay
        bool decoupled_weight_decay
        bool maximize
        double grad_scale

    cdef cppclass AdamaxConfig:
        double lr
        double beta1
        double beta2
        double eps
        double weight_decay
        bool maximize
        double grad_scale

    cdef cppclass LionConfig:
        double lr
        double beta1
        double beta2
        double weight_decay
        bool maximize
        double grad_scale

    cdef cppclass AdadeltaConfig:
        double lr
        double rho
        double eps
        double weight_decay
        bool maximize
        double grad_scale

    cdef cppclass RpropConfig:
        double lr
        double etaminus
        double etaplus
        double step_size_min
        double step_size_max
        bool maximize
        double grad_scale

    cdef cppclass AsgdConfig:
        double lr
        double lambd
        double alpha
        double t0
        double weight_decay
        bool maximize
        double grad_scale

    void validate(const SgdConfig& config) except +
    void validate(const AdagradConfig& config) except +
    void validate(const RmspropConfig& config) except +
    void validate(const AdamConfig& config) except +
    void validate(const AdafactorConfig& config) except +
    void validate(const NadamConfig& config) except +
    void validate(const RadamConfig& config) except +
    void validate(const AdamaxConfig& config) except +
    void validate(const LionConfig& config) except +
    void validate(const AdadeltaConfig& config) except +
    void validate(const RpropConfig& config) except +
    void validate(const AsgdConfig& config) except +

    cdef cppclass ScheduleFreeAdamWConfig:
        double lr
        double beta1
        double beta2
        double eps
        double weight_decay
        double warmup_steps
        double r
        double weight_lr_power
        double grad_scale

    cdef cppclass ScheduleFreeSgdConfig:
        double lr
        double momentum
        double weight_decay
        double warmup_steps
        double r
        double weight_lr_power
        double grad_scale

    # A schedule-free parameter group's state (caller-owned; starts in eval mode).
    cdef cppclass ScheduleFreeGroupState:
        int64_t k
        double lr_max
        double weight_sum
        bool train_mode

    void validate(const ScheduleFreeAdamWConfig& config) except +
    void validate(const ScheduleFreeSgdConfig& config) except +

    # --- tensors.hpp: one parameter and its state, as caller-owned pointers
    # (T is float or double; optional state may be NULL when unused) -------

    # Mixed precision (tensors.hpp's Storage): a Tensor[float] whose pointers point to
    # elements of these formats (a bfloat16/float16 array passed as <float*> its uint16 data).
    cpdef enum class Format(uint8_t):
        float32
        bfloat16
        float16

    cpdef enum class Rounding(uint8_t):
        nearest_even
        stochastic

    cdef cppclass Storage:
        Format param
        Format grad
        Format state
        float* master
        Rounding rounding
        uint64_t seed
        uint64_t stream
        uint64_t step

    cdef cppclass SgdTensor[T]:
        T* param
        const T* grad
        T* momentum_buffer
        size_t size
        bool initialize_momentum_buffer

    cdef cppclass AdagradTensor[T]:
        T* param
        const T* grad
        T* sum
        size_t size
        int64_t step

    cdef cppclass RmspropTensor[T]:
        T* param
        const T* grad
        T* square_avg
        T* grad_avg
        T* momentum_buffer
        size_t size

    cdef cppclass AdamTensor[T]:
        T* param
        const T* grad
        T* exp_avg
        T* exp_avg_sq
        T* max_exp_avg_sq
        size_t size
        int64_t step

    # A matrix (stack) when rows and columns are set: row_var has size / columns
    # elements, col_var size / rows; a vector (rows = columns = 0) uses variance.
    cdef cppclass AdafactorTensor[T]:
        T* param
        const T* grad
        T* row_var
        T* col_var
        T* variance
        size_t size
        size_t rows
        size_t columns
        int64_t step

    # mu_product: the caller's double (1 before the first step), replaced after the step.
    cdef cppclass NadamTensor[T]:
        T* param
        const T* grad
        T* exp_avg
        T* exp_avg_sq
        double* mu_product
        size_t size
        int64_t step

    cdef cppclass RadamTensor[T]:
        T* param
        const T* grad
        T* exp_avg
        T* exp_avg_sq
        size_t size
        int64_t step

    cdef cppclass AdamaxTensor[T]:
        T* param
        const T* grad
        T* exp_avg
        T* exp_inf
        size_t size
        int64_t step

    cdef cppclass LionTensor[T]:
        T* param
        const T* grad
        T* exp_avg
        size_t size

    cdef cppclass AdadeltaTensor[T]:
        T* param
        const T* grad
        T* square_avg
        T* acc_delta
        size_t size

    cdef cppclass RpropTensor[T]:
        T* param
        const T* grad
        T* prev
        T* step_size
        size_t size
        bool initialize_step_size

    cdef cppclass AsgdTensor[T]:
        T* param
        const T* grad
        T* ax
        double* eta
        double* mu
        size_t size
        int64_t step

    cdef cppclass ScheduleFreeAdamWTensor[T]:
        T* param
        const T* grad
        T* z
        T* exp_avg_sq
        size_t size
        bool initialize_z

    cdef cppclass ScheduleFreeSgdTensor[T]:
        T* param
        const T* grad
        T* z
        size_t size
        bool initialize_z

    # --- optimizers.hpp: one step over `count` tensors, or over one -------

    void sgd_step(const SgdConfig& config, const SgdTensor[float]* tensors, size_t count) except +
    void sgd_step(const SgdConfig& config, const SgdTensor[float]* tensors, const Storage* storages,
                  size_t count) except +
    void sgd_step(const SgdConfig& config, const SgdTensor[double]* tensors, size_t count) except +
    void sgd_step(const SgdConfig& config, const SgdTensor[float]& tensor) except +
    void sgd_step(const SgdConfig& config, const SgdTensor[double]& tensor) except +

    void adagrad_step(const AdagradConfig& config, const AdagradTensor[float]* tensors, size_t count) except +
    void adagrad_step(const AdagradConfig& config, const AdagradTensor[float]* tensors, const Storage* storages,
                  size_t count) except +
    void adagrad_step(const AdagradConfig& config, const AdagradTensor[double]* tensors, size_t count) except +
    void adagrad_step(const AdagradConfig& config, const AdagradTensor[float]& tensor) except +
    void adagrad_step(const AdagradConfig& config, const AdagradTensor[double]& tensor) except +

    void rmsprop_step(const RmspropConfig& config, const RmspropTensor[float]* tensors, size_t count) except +
    void rmsprop_step(const RmspropConfig& config, const RmspropTensor[float]* tensors, const Storage* storages,
                  size_t count) except +
    void rmsprop_step(const RmspropConfig& config, const RmspropTensor[double]* tensors, size_t count) except +
    void rmsprop_step(const RmspropConfig& config, const RmspropTensor[float]& tensor) except +
    void rmsprop_step(const RmspropConfig& config, const RmspropTensor[double]& tensor) except +

    void adam_step(const AdamConfig& config, const AdamTensor[float]* tensors, size_t count) except +
    void adam_step(const AdamConfig& config, const AdamTensor[float]* tensors, const Storage* storages,
                  size_t count) except +
    void adam_step(const AdamConfig& config, const AdamTensor[double]* tensors, size_t count) except +
    void adam_step(const AdamConfig& config, const AdamTensor[float]& tensor) except +
    void adam_step(const AdamConfig& config, const AdamTensor[double]& tensor) except +

    void adafactor_step(const AdafactorConfig& config, const AdafactorTensor[float]* tensors, size_t count) except +
    void adafactor_step(const AdafactorConfig& config, const AdafactorTensor[float]* tensors, const Storage* storages,
                  size_t count) except +
    void adafactor_step(const AdafactorConfig& config, const AdafactorTensor[double]* tensors, size_t count) except +
    void adafactor_step(const AdafactorConfig& config, const AdafactorTensor[float]& tensor) except +
    void adafactor_step(const AdafactorConfig& config, const AdafactorTensor[double]& tensor) except +

    void nadam_step(const NadamConfig& config, const NadamTensor[float]* tensors, size_t count) except +
    void nadam_step(const NadamConfig& config, const NadamTensor[float]* tensors, const Storage* storages,
                  size_t count) except +
    void nadam_step(const NadamConfig& config, const NadamTensor[double]* tensors, size_t count) except +
    void nadam_step(const NadamConfig& config, const NadamTensor[float]& tensor) except +
    void nadam_step(const NadamConfig& config, const NadamTensor[double]& tensor) except +

    void radam_step(const RadamConfig& config, const RadamTensor[float]* tensors, size_t count) except +
    void radam_step(const RadamConfig& config, const RadamTensor[float]* tensors, const Storage* storages,
                  size_t count) except +
    void radam_step(const RadamConfig& config, const RadamTensor[double]* tensors, size_t count) except +
    void radam_step(const RadamConfig& config, const RadamTensor[float]& tensor) except +
    void radam_step(const RadamConfig& config, const RadamTensor[double]& tensor) except +

    void adamax_step(const AdamaxConfig& config, const AdamaxTensor[float]* tensors, size_t count) except +
    void adamax_step(const AdamaxConfig& config, const AdamaxTensor[float]* tensors, const Storage* storages,
                  size_t count) except +
    void adamax_step(const AdamaxConfig& config, const AdamaxTensor[double]* tensors, size_t count) except +
    void adamax_step(const AdamaxConfig& config, const AdamaxTensor[float]& tensor) except +
    void adamax_step(const AdamaxConfig& config, const AdamaxTensor[double]& tensor) except +

    void lion_step(const LionConfig& config, const LionTensor[float]* tensors, size_t count) except +
    void lion_step(const LionConfig& config, const LionTensor[float]* tensors, const Storage* storages,
                  size_t count) except +
    void lion_step(const LionConfig& config, const LionTensor[double]* tensors, size_t count) except +
    void lion_step(const LionConfig& config, const LionTensor[float]& tensor) except +
    void lion_step(const LionConfig& config, const LionTensor[double]& tensor) except +

    void adadelta_step(const AdadeltaConfig& config, const AdadeltaTensor[float]* tensors, size_t count) except +
    void adadelta_step(const AdadeltaConfig& config, const AdadeltaTensor[float]* tensors, const Storage* storages,
                  size_t count) except +
    void adadelta_step(const AdadeltaConfig& config, const AdadeltaTensor[double]* tensors, size_t count) except +
    void adadelta_step(const AdadeltaConfig& config, const AdadeltaTensor[float]& tensor) except +
    void adadelta_step(const AdadeltaConfig& config, const AdadeltaTensor[double]& tensor) except +

    void rprop_step(const RpropConfig& config, const RpropTensor[float]* tensors, size_t count) except +
    void rprop_step(const RpropConfig& config, const RpropTensor[float]* tensors, const Storage* storages,
                  size_t count) except +
    void rprop_step(const RpropConfig& config, const RpropTensor[double]* tensors, size_t count) except +
    void rprop_step(const RpropConfig& config, const RpropTensor[float]& tensor) except +
    void rprop_step(const RpropConfig& config, const RpropTensor[double]& tensor) except +

    void asgd_step(const AsgdConfig& config, const AsgdTensor[float]* tensors, size_t count) except +
    void asgd_step(const AsgdConfig& config, const AsgdTensor[float]* tensors, const Storage* storages,
                  size_t count) except +
    void asgd_step(const AsgdConfig& config, const AsgdTensor[double]* tensors, size_t count) except +
    void asgd_step(const AsgdConfig& config, const AsgdTensor[float]& tensor) except +
    void asgd_step(const AsgdConfig& config, const AsgdTensor[double]& tensor) except +

    # Schedule-free: a step in eval mode raises RuntimeError (std::logic_error); train/eval switch modes.
    void schedule_free_adamw_step(const ScheduleFreeAdamWConfig& config, ScheduleFreeGroupState& state,
                                  const ScheduleFreeAdamWTensor[float]* tensors, size_t count) except +
    void schedule_free_adamw_step(const ScheduleFreeAdamWConfig& config, ScheduleFreeGroupState& state,
                                  const ScheduleFreeAdamWTensor[double]* tensors, size_t count) except +
    void schedule_free_adamw_train(const ScheduleFreeAdamWConfig& config, ScheduleFreeGroupState& state,
                                   const ScheduleFreeAdamWTensor[float]* tensors, size_t count) except +
    void schedule_free_adamw_train(const ScheduleFreeAdamWConfig& config, ScheduleFreeGroupState& state,
                                   const ScheduleFreeAdamWTensor[double]* tensors, size_t count) except +
    void schedule_free_adamw_eval(const ScheduleFreeAdamWConfig& config, ScheduleFreeGroupState& state,
                                  const ScheduleFreeAdamWTensor[float]* tensors, size_t count) except +
    void schedule_free_adamw_eval(const ScheduleFreeAdamWConfig& config, ScheduleFreeGroupState& state,
                                  const ScheduleFreeAdamWTensor[double]* tensors, size_t count) except +
    void schedule_free_sgd_step(const ScheduleFreeSgdConfig& config, ScheduleFreeGroupState& state,
                                const ScheduleFreeSgdTensor[float]* tensors, size_t count) except +
    void schedule_free_sgd_step(const ScheduleFreeSgdConfig& config, ScheduleFreeGroupState& state,
                                const ScheduleFreeSgdTensor[double]* tensors, size_t count) except +
    void schedule_free_adamw_step(const ScheduleFreeAdamWConfig& config, ScheduleFreeGroupState& state,
                                  const ScheduleFreeAdamWTensor[float]* tensors, const Storage* storages,
                                  size_t count) except +
    void schedule_free_sgd_step(const ScheduleFreeSgdConfig& config, ScheduleFreeGroupState& state,
                                const ScheduleFreeSgdTensor[float]* tensors, const Storage* storages,
                                size_t count) except +
    void schedule_free_sgd_train(const ScheduleFreeSgdConfig& config, ScheduleFreeGroupState& state,
                                 const ScheduleFreeSgdTensor[float]* tensors, size_t count) except +
    void schedule_free_sgd_train(const ScheduleFreeSgdConfig& config, ScheduleFreeGroupState& state,
                                 const ScheduleFreeSgdTensor[double]* tensors, size_t count) except +
    void schedule_free_sgd_eval(const ScheduleFreeSgdConfig& config, ScheduleFreeGroupState& state,
                                const ScheduleFreeSgdTensor[float]* tensors, size_t count) except +
    void schedule_free_sgd_eval(const ScheduleFreeSgdConfig& config, ScheduleFreeGroupState& state,
                                const ScheduleFreeSgdTensor[double]* tensors, size_t count) except +

    # --- runtime.hpp: instruction set, threads, denormals -----------------

    string active_isa() except +
    vector[string] available_isas() except +
    vector[string] compiled_isas() except +
    void set_isa(const string& name) except +
    int get_num_threads() except +
    void set_num_threads(int count) except +
    bool get_flush_denormals()
    void set_flush_denormals(bool enabled)


cdef extern from "lrcore/schedules.hpp" namespace "lrcore::schedules" nogil:

    # --- schedules.hpp: closed-form schedules, value = schedule(t) --------
    # Fields set here are not validated (the header's validate() and make<S>()
    # check them; they are C++ templates, not declared here): keep lengths and
    # periods positive and t >= 0, or build the schedule in Python.

    double cosine_anneal(double start, double end, double fraction)
    double linear_anneal(double start, double end, double fraction)

    enum class AnnealStrategy:
        cosine
        linear

    enum class CyclicMode:
        triangular
        triangular2
        exp_range

    cdef cppclass Constant:
        double lr
        double operator()(int64_t t) const

    cdef cppclass ExponentialDecay:
        double lr
        double gamma
        int64_t decay_steps
        bool staircase
        double operator()(int64_t t) const

    cdef cppclass StepDecay:
        double lr
        int64_t step_size
        double gamma
        double operator()(int64_t t) const

    cdef cppclass MultiStepDecay:
        double lr
        vector[int64_t] milestones
        double gamma
        double operator()(int64_t t) const

    cdef cppclass InverseTimeDecay:
        double lr
        double decay_rate
        int64_t decay_steps
        bool staircase
        double operator()(int64_t t) const

    cdef cppclass PolynomialDecay:
        double lr
        int64_t total_steps
        double power
        double end_lr
        double operator()(int64_t t) const

    cdef cppclass Linear:
        double lr
        double start_factor
        double end_factor
        int64_t total_steps
        double operator()(int64_t t) const

    cdef cppclass CosineAnnealing:
        double lr
        int64_t t_max
        double eta_min
        double operator()(int64_t t) const

    cdef cppclass CosineAnnealingWarmRestarts:
        double lr
        int64_t t_0
        int64_t t_mult
        double eta_min
        double operator()(int64_t t) const

    cdef cppclass CyclicWave:
        double step_size_up
        double step_size_down
        CyclicMode mode
        double gamma
        double interpolate(int64_t t, double start, double peak) const

    cdef cppclass Cyclic:
        double base_lr
        double max_lr
        CyclicWave wave
        double operator()(int64_t t) const

    cdef cppclass CyclicMomentum:
        double base_momentum
        double max_momentum
        CyclicWave wave
        double operator()(int64_t t) const

    cdef cppclass OneCyclePhases:
        int64_t total_steps
        double pct_start
        AnnealStrategy anneal_strategy
        bool three_phase
        double interpolate(int64_t t, double start, double peak, double end) const

    cdef cppclass OneCycle:
        double max_lr
        OneCyclePhases phases
        double div_factor
        double final_div_factor
        double initial_lr() const
        double min_lr() const
        double operator()(int64_t t) const

    cdef cppclass OneCycleMomentum:
        OneCyclePhases phases
        double base_momentum
        double max_momentum
        double operator()(int64_t t) const

    cdef cppclass InverseSqrt:
        double lr
        int64_t warmup_steps
        double operator()(int64_t t) const
