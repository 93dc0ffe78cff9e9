"""Structured configs: one dataclass per option of each config group.

YAML files under ``conf/`` hold only what differs from these defaults; ``MISSING`` marks what
the user must give. Kept free of ``from __future__ import annotations`` and of ``X | None``:
OmegaConf reads these annotations at run time and understands ``Optional``.

A field with a fixed set of values is a :class:`~gen_loop.config.choices.Choice` enum
(``config/choices.py``). The configs of the other commands (generate, train-base, analyze) are
in ``config/commands.py``.
"""

# ruff: noqa: UP045
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Optional

from omegaconf import MISSING

from gen_loop.config.analysis import RunAnalysisConfig
from gen_loop.config.choices import (
    CentroidMetric,
    FinetuneControl,
    Kernel,
    RefineMethod,
    Sampler,
    SceneSeeds,
    SelectionMethod,
)


@dataclass
class GeneratorConfig:
    """A generator: ``_target_`` builds it; ``params`` are the current (source) settings,
    the starting point of the search (trial 0) and the values of unsearched parameters."""

    _target_: str = "gen_loop.generator.ProceduralGenerator"
    width: int = 256
    height: int = 256
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class FolderGeneratorConfig(GeneratorConfig):
    """``generator=folder``: a labeled YOLO dataset re-rendered through the camera model.
    Fields other than ``params`` are constructor arguments of the ``_target_``."""

    _target_: str = "gen_loop.generator.FolderGenerator"
    root: str = MISSING  # a YOLO dataset folder (images/ + labels/) or its data.yaml
    class_names: Optional[list[str]] = None  # when the dataset has no data.yaml names
    max_images: Optional[int] = None


@dataclass
class GeneratorParamConfig:
    """One knob of an external simulator: numeric (low, high) or categorical (choices)."""

    default: Any = MISSING  # the simulator's current setting
    low: Optional[float] = None
    high: Optional[float] = None
    type: str = "float"  # float | int (numeric parameters)
    choices: Optional[list[Any]] = None
    unit: str = ""
    doc: str = ""


@dataclass
class CommandGeneratorConfig(GeneratorConfig):
    """``generator=command``: an external simulator run as a command (JSON in, YOLO out)."""

    _target_: str = "gen_loop.generator.CommandGenerator"
    command: list[str] = MISSING  # argument list (no shell); "{params_json}" is replaced
    parameters: dict[str, GeneratorParamConfig] = field(default_factory=dict)
    timeout_s: float = 600.0
    work_dir: Optional[str] = None  # None: a temporary folder
    keep_outputs: bool = False
    class_names: Optional[list[str]] = None  # when the output has no data.yaml names


@dataclass
class EmbedderConfig:
    """The detector whose backbone embeds images: ``_target_`` builds it with the fields below
    (``weights`` resolved to a checkpoint path first; see ``gen_loop.embedder.YoloEmbedder``)."""

    _target_: str = "gen_loop.embedder.YoloEmbedder"
    model: str = "yolov7-tiny"
    # A checkpoint path (ultralytics, or original YOLOv7: then `model` comes from the
    # checkpoint); "base" = the base model (shipped, or made by `train-base`);
    # "random" = random initialisation (only when explicitly asked).
    weights: str = "base"
    # Indices or names (backbone_end, backbone_p3, backbone_p4, head_p3, head_p4, head_p5).
    layers: list[Any] = field(default_factory=lambda: [14])
    imgsz: int = 256
    device: str = "auto"
    batch_size: int = 32
    half: Optional[bool] = None
    seed: int = 0


@dataclass
class OnnxEmbedderConfig(EmbedderConfig):
    """``embedder=onnx``: an exported detector run with onnxruntime (see
    ``gen_loop.embedder.OnnxEmbedder``); layers are tensor names of its graph. It has no torch
    weights: fine-tuning takes ``finetune.weights`` (the checkpoint the file was exported from)
    or is skipped, with the reason in the verdict."""

    _target_: str = "gen_loop.embedder.OnnxEmbedder"
    # Required, but not MISSING: a MISSING here would not replace the value of the option
    # it is switched from (model=yolov7-tiny, layers=[14]); empty values are refused instead.
    model: str = ""  # the .onnx file
    # Not used: the weights are in embedder.model (any other value is refused).
    weights: str = "none"
    # Tensor names; `python -m gen_loop onnx-tensors MODEL.onnx` lists them.
    layers: list[Any] = field(default_factory=list)


@dataclass
class ScoreConfig:
    """How a batch is scored against the target: one subclass per option of the ``score``
    group, its ``_target_`` the :class:`~gen_loop.score.Scorer` it builds.

    Every option has ``metric`` (the distance's name, read by the loop and its records: a
    choice on ``centroid``, fixed by the option on the others) and ``noise_floor_splits`` (the
    loop's, for the noise floor). Every other field, and every field not in ``loop_fields``,
    is a constructor argument of ``_target_`` (see ``gen_loop.config.build.instantiate_scorer``).
    """

    _target_: str = MISSING
    # 20 splits: the floor estimate varies +-7 % with the seed; 200: +-2 %.
    noise_floor_splits: int = 200
    # Fields the loop reads that are not constructor arguments of `_target_` (a ClassVar: not
    # a config key).
    loop_fields: ClassVar[tuple[str, ...]] = ("metric", "noise_floor_splits")
    if TYPE_CHECKING:  # declared by each option (a choice on centroid, fixed on the others)
        metric: str = ""


@dataclass
class CentroidScoreConfig(ScoreConfig):
    """``score=centroid``: distance between the batch's and the target's centroids."""

    _target_: str = "gen_loop.score.CentroidScorer"
    metric: CentroidMetric = CentroidMetric.zscore_l2
    loop_fields: ClassVar[tuple[str, ...]] = ("noise_floor_splits",)


@dataclass
class FrechetScoreConfig(ScoreConfig):
    """``score=frechet``: Fréchet distance between Gaussian fits of the z-scored sets."""

    _target_: str = "gen_loop.score.FrechetScorer"
    metric: str = "frechet"  # fixed: the option is the choice
    # Covariance shrinkage in [0, 1]; null = Ledoit-Wolf (chosen from the data).
    shrinkage: Optional[float] = None


@dataclass
class MMDScoreConfig(ScoreConfig):
    """``score=mmd``: kernel MMD between the z-scored sets."""

    _target_: str = "gen_loop.score.MMDScorer"
    metric: str = "mmd"  # fixed: the option is the choice
    kernel: Kernel = Kernel.rbf
    # RBF bandwidth (sigma, in target z-score units); null = median of the target's pairwise
    # distances, fixed at fit.
    bandwidth: Optional[float] = None


@dataclass
class KIDScoreConfig(MMDScoreConfig):
    """``score=kid``: the MMD scorer with the KID kernel ``(x.y/D + 1)^3``."""

    kernel: Kernel = Kernel.poly


@dataclass
class PRDCScoreConfig(ScoreConfig):
    """``score=prdc``: ``1 - coverage`` of the target's k-NN manifold by the batch."""

    _target_: str = "gen_loop.score.PRDCScorer"
    metric: str = "prdc"  # fixed: the option is the choice
    k_neighbours: int = 5  # neighbour rank k of the target's k-NN radii


@dataclass
class ParamRangeConfig:
    """One searched parameter."""

    type: str = "float"  # float | int | categorical
    low: Optional[float] = None
    high: Optional[float] = None
    log: bool = False
    step: Optional[float] = None
    choices: Optional[list[Any]] = None
    # Searched only when every named (earlier, categorical) parameter has the given value,
    # e.g. fog: {low: 0, high: 1, when: {weather: fog}}.
    when: Optional[dict[str, Any]] = None


@dataclass
class RestartConfig:
    """Leaving a wrong basin (``search.refine.restart``, gen_loop/search/basins.py).

    A refinement whose own best stays above ``above`` x the noise floor for ``stall`` of its
    trials (and at least P + 2, a Jacobian and two steps, for P refined parameters) without a
    ``search.min_rel_improvement`` gain has found a minimum that is not the target's: it
    ends, its trials become a left basin, the sampler proposes ``samples`` trials at least
    ``radius`` (unit cube, Euclidean) from every left basin's trials and from each other
    (so they look in different places, not along one edge of the basin), and the best trial
    outside the left basins is refined next. The plateau rule is held for ``window`` trials
    after leaving, so the next basin gets its Jacobian and steps. ``above`` 0: never.
    Measured in experiments/recovery/BASINS.md.
    """

    above: float = 5.0
    stall: int = 8
    radius: float = 0.25
    samples: int = 4
    window: int = 16


@dataclass
class RefineConfig:
    """A least-squares refinement stage after the sampler (gen_loop/search/refine.py)."""

    # none | gn: trust-region Gauss-Newton with Broyden updates of the Jacobian (one
    # finite-difference Jacobian, then one trial a step) | lsq: scipy's bounded trust-region
    # least squares (a finite-difference Jacobian every step) | auto: gn when the scorer has a
    # residual vector (centroid zscore_l2 / l2), else none. Every evaluation is a trial of the
    # study. From the vector_gp start, gn reached 1.5 x the floor in a median of 24 trials
    # (experiments/recovery/ANY_CAMERA.md); TPE 50 + lsq in 65 (LOOP_REFINE.md). Several
    # workers share one refinement (gen_loop/search/refine_claim.py).
    method: RefineMethod = RefineMethod.auto
    # Switch from the sampler to the refinement after this many finished trials (the 10-trial
    # Sobol start and 6 model-based trials of vector_gp; search=tpe: 50).
    after: int = 16
    diff_step: float = 0.02  # finite-difference step of the Jacobian, a fraction of each range
    # (also of the Jacobian search.uncertainty measures at the best camera)
    restart: RestartConfig = field(default_factory=RestartConfig)
    # gn: when two worse points in a row make it measure the Jacobian afresh, give the trust
    # region back the two halvings (the stale Jacobian was to blame). Mixed on 42 runs, so
    # off: camera 16 67 -> 50 trials to the floor on seed 4, 51 -> 61 on seed 0
    # (experiments/recovery/BASINS.md, "A trust region that grows back").
    regrow: bool = False
    # gn: after a worse point, one trial at its second-order correction (the step plus the
    # least-squares fix of the linear model's error there) before the trust region is halved;
    # it bends a step along a curved valley. On 42 runs (seeds 0 and 4): worst 67 -> 49 trials
    # to 1.5x the floor, median 25 either way (experiments/recovery/BASINS.md, "Steps that
    # bend").
    correct: bool = True


@dataclass
class SearchConfig:
    """Optuna ask/tell search and the convergence rule."""

    # vector_gp: Bayesian optimisation on the residual vector (gen_loop/search/vector_sampler.py);
    # tpe, gp (on the distance), random, qmc: the conf/search/*.yaml of the same names.
    sampler: Sampler = Sampler.vector_gp
    n_trials: int = 100
    timeout_s: Optional[float] = None
    batch_size: int = 32
    seed: int = 0
    scene_seed: int = 0  # every trial renders these scenes (common random numbers)
    scene_seeds: SceneSeeds = SceneSeeds.common  # common | fresh (see SceneSeeds)
    n_startup_trials: int = 10  # the Sobol (vector_gp) or random (tpe) start, trial 0 included
    multivariate: bool = True  # tpe: model parameter interactions
    # Several workers on one study (vector_gp): false, a model-based proposal waits for the
    # running trials, so N workers run the one-worker study trial for trial (the design and
    # the Jacobians still run in parallel); true, it is made while they run (their points at
    # the predicted residual): more trials an hour, more trials to the floor
    # (experiments/workers/TRIALS_TO_FLOOR.md).
    parallel_proposals: bool = False
    study_name: str = "gen_loop"
    # None: sqlite file optuna.db in the run folder. Workers that share a study share this:
    # postgresql://user@host/db (several machines) or journal:<shared file> (no database).
    storage: Optional[str] = None
    # Database storages: a running trial beats every heartbeat_interval_s; one silent for
    # grace_period_s (its worker died) is failed and re-enqueued by another worker.
    heartbeat_interval_s: int = 10
    grace_period_s: int = 60
    # Name -> ParamRangeConfig. Typed Any so that `search.space.gamma={low: 0.6, high: 1.6}`
    # works: OmegaConf 2.3 cannot assign a plain dict to a Dict[str, dataclass] node. Each entry
    # is checked and converted in __post_init__ (unknown keys and bad types name their key).
    space: dict[str, Any] = field(default_factory=dict)
    # Held at these values for this search (over generator.params), not searched.
    fixed: dict[str, Any] = field(default_factory=dict)
    # Extra starting points (priors) enqueued after trial 0, e.g. settings known to be close.
    enqueue: list[dict[str, Any]] = field(default_factory=list)
    # Stop when best <= floor_factor * noise floor (at the trial batch size). A batch at the
    # exact parameters scores 0.96 +- 0.28 x the floor: 1.0 is reached only 61 % of the time,
    # 1.5 95 % (experiments/noise_floor/RESULTS.md).
    floor_factor: float = 1.5
    # ... or no relative improvement >= min_rel_improvement for this many trials. Gauss-Newton
    # gains every few trials until it reaches a minimum; TPE's gaps between real improvements
    # reach 30+ trials well above the floor (search=tpe: 60).
    patience: int = 20
    min_rel_improvement: float = 0.01
    # Stop at the floor even when it is uncertain: its splits vary by more than 50 % of its
    # value, or it is measured against fewer than 8 target images, as for targets of under 15
    # images (gen_loop/search/floor_quality.py). By default such a search runs to its budget
    # or a plateau and is never called converged.
    stop_at_uncertain_floor: bool = False
    max_consecutive_failures: int = 5
    refine: RefineConfig = field(default_factory=RefineConfig)
    # Follow the run's own advice up to this many times (gen_loop/search/advice.py): when the
    # search stops above the floor (on a plateau or its trial budget) and names unsearched
    # parameters or a best value at a range bound, search again in <run_dir>/advised with
    # those added / widened, from the best camera so far; the last round makes the selection
    # and fine-tune. Each round has its own budget (n_trials). On the fog/JPEG camera (5 seeds,
    # experiments/downstream/RESULTS.md Result 7) 2 rounds gave 0.120 mAP50, as without them
    # (0.118), while the same hints followed by hand in fresh runs gave 0.170. 0: advise only.
    advice_rounds: int = 0
    # Each advised round enqueues the best camera so far as its first prior (true), or starts
    # afresh from the generator's defaults and its own Sobol design as a user's new run would
    # (false; the hand-followed runs of Result 7 did that). Side by side on the fog/JPEG camera
    # (5 seeds, Result 12): 0.125 mAP50 afresh against 0.122, in 989 trials against 829.
    advice_from_best: bool = True
    # After the search, report each parameter's standard deviation at the best camera, from a
    # forward-difference Jacobian there (the polish's; without a polish, one batch render a
    # searched continuous parameter, not trials): console, summary.json
    # `parameter_uncertainty`, MLflow `uncertainty_share.*` and tag `gen_loop.loose_params`
    # (gen_loop/search/uncertainty.py; on 21 cameras x 3 seeds error/std had a median of 0.68,
    # experiments/recovery/UNCERTAINTY.md).
    uncertainty: bool = True
    # When the search ends converged or on a plateau with trials of the budget left: measure
    # the Jacobian at the best camera (one render a parameter) and run the Gauss-Newton step
    # from it as one more trial, stage `polish` (gen_loop/loop/polish_stage.py). On 21 cameras
    # x 3 seeds it brought all five identifiable parameters within 3 % in 47 runs of 63
    # instead of 14.
    polish: bool = True

    def __post_init__(self) -> None:
        from gen_loop.config.keys import param_range

        self.space = {
            name: param_range(f"search.space.{name}", entry) for name, entry in self.space.items()
        }


@dataclass
class DemoTargetConfig:
    """The embedded "client camera" made by the generator with hidden parameters."""

    n: int = 160
    seed: int = 777
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class TargetConfig:
    """The unlabeled target images; ``path=null`` uses the embedded demo target."""

    path: Optional[str] = None
    max_images: Optional[int] = None
    # Videos in the target (or a video as target.path): every video_stride-th frame, at most
    # video_max_frames per video; max_images still caps the total.
    video_stride: int = 10
    video_max_frames: Optional[int] = 300
    # A labeled holdout (YOLO data.yaml) for evaluation; the demo target supplies its own.
    labels: Optional[str] = None
    demo: DemoTargetConfig = field(default_factory=DemoTargetConfig)


@dataclass
class SelectionConfig:
    """Which samples of the final pool are kept for fine-tuning."""

    pool_size: int = 256
    pool_seed: int = 1  # fresh scenes, not the search's scene seeds
    method: SelectionMethod = SelectionMethod.quantile  # quantile | topk | camera | jitter
    quantile: float = 0.9  # keep samples closer than this quantile of the target's own
    top_k: int = 128
    # camera: render each of pool_size scenes with the pool_trials best trials' parameters and
    # keep, per scene, the rendering closest to the target (selects camera, not content).
    pool_trials: int = 8
    # jitter: every pool scene kept, in blocks each under one of n_cameras cameras drawn about
    # the best (a normal per searched continuous parameter, reflected at its bounds). Its
    # standard deviation, as a fraction of the range, is the larger of `jitter` and the spread
    # of the pool_trials best trials' values. n_cameras is also the domain-randomised
    # control's number of cameras (finetune.control=randomised).
    jitter: float = 0.05
    n_cameras: int = 16


@dataclass
class FinetuneConfig:
    """Fine-tuning the base detector on the selected samples, and evaluation: one subclass
    per option of the ``finetune`` group, its ``_target_`` the
    :class:`~gen_loop.finetune.Finetuner` it builds (``finetune=default``: the ultralytics
    trainer, in-process). Every field not in ``loop_fields`` is a constructor argument of
    ``_target_``."""

    _target_: str = "gen_loop.finetune.UltralyticsFinetuner"
    # Fields the loop reads (selection, replay, verdict), not the finetuner (a ClassVar: not a
    # config key).
    loop_fields: ClassVar[tuple[str, ...]] = (
        "enabled",
        "weights",
        "val_fraction",
        "replay_fraction",
        "replay_data",
        "require_gain",
        "min_gain",
        "control",
    )
    enabled: bool = True
    # The checkpoint fine-tuned and evaluated as "before"; null = the embedder's own
    # (embedder.weights). embedder=onnx has none: give the .pt its file was exported from.
    weights: Optional[str] = None
    epochs: int = 8
    batch: int = 16
    imgsz: int = 256
    lr0: float = 0.001
    augment: bool = False
    val_fraction: float = 0.2
    device: str = "auto"
    seed: int = 0
    # Share of the fine-tuning set taken from source-camera data, against forgetting
    # (0 = selected samples only). replay_data: a YOLO data.yaml of the user's source data;
    # null = images rendered with the generator's current (source camera) parameters.
    replay_fraction: float = 0.0
    replay_data: Optional[str] = None
    # With labeled target data, the fine-tuned weights are the run's result only if target
    # mAP50 rose by more than min_gain (absolute; 0.01 = one mAP point); see summary "verdict".
    require_gain: bool = True
    min_gain: float = 0.01
    # With labeled target data, `randomised` also fine-tunes the base detector on as many pool
    # scenes under cameras drawn uniformly from the search space (domain randomisation, no
    # search; selection.n_cameras of them) and calls the loop's result better only if its
    # mAP50 also beats that control's by more than min_gain. Doubles the fine-tune's cost.
    control: FinetuneControl = FinetuneControl.none


@dataclass
class CommandFinetuneConfig(FinetuneConfig):
    """``finetune=command``: the user's own trainer run as a command, never through a shell
    (contract: ``gen_loop/finetune/COMMAND.md``). The settings above reach it only through the
    placeholders of ``command``."""

    _target_: str = "gen_loop.finetune.CommandFinetuner"
    # Argument list; {data_yaml} {weights} {model} {out_dir} {epochs} {imgsz} {batch} {lr0}
    # {augment} {device} {seed} {eval_yaml} are replaced (an argument holding {eval_yaml} is
    # dropped without labeled target data).
    command: list[str] = MISSING
    timeout_s: Optional[float] = None  # None: no limit; else seconds before it is killed


@dataclass
class TrackingConfig:
    """MLflow tracking; ``uri=null`` means a SQLite store ``mlflow.db`` in the working dir."""

    uri: Optional[str] = None
    experiment: str = "gen_loop"
    artifact_location: Optional[str] = None
    trial_images: int = 8  # images in each trial's sample grid (0 = none)
    parent_run_id: Optional[str] = None  # nest the parent run under this run (sweeps)


@dataclass
class RunConfig:
    """``python -m gen_loop run``."""

    generator: GeneratorConfig = MISSING
    embedder: EmbedderConfig = MISSING
    score: ScoreConfig = MISSING
    search: SearchConfig = MISSING
    # `target.path` starts MISSING here, not None: demo.yaml sets it to null, and target=folder
    # must fail without a path rather than fall back to the demo (a `???` in YAML cannot
    # replace a value already there, such as the dataclass's None).
    target: TargetConfig = field(default_factory=lambda: TargetConfig(path=MISSING))
    selection: SelectionConfig = MISSING
    finetune: FinetuneConfig = MISSING
    tracking: TrackingConfig = MISSING
    analysis: RunAnalysisConfig = field(default_factory=RunAnalysisConfig)
    run_dir: str = MISSING
    cache_dir: Optional[str] = None
