"""Serializers of the production-scheduling API: they validate and present; scheduling.services writes."""

from rest_framework import serializers

from scheduling.engine import family
from scheduling.models import Method, ScheduleRun, ShopProblem


class ShopProblemSerializer(serializers.ModelSerializer):
    department = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = ShopProblem
        fields = [
            "id", "department", "slug", "name", "description", "n_jobs", "n_machines", "n_operations", "flexible",
            "best_known", "source", "source_format", "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class ShopProblemDetailSerializer(ShopProblemSerializer):
    class Meta(ShopProblemSerializer.Meta):
        fields = [*ShopProblemSerializer.Meta.fields, "machines", "jobs", "origin"]
        read_only_fields = fields


class ProblemCreateSerializer(serializers.Serializer):
    """Either `machines` + `jobs` (the stored shape) or `text` of a file with its optional `format`."""

    department = serializers.SlugField()
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    machines = serializers.JSONField(required=False, help_text='[{"name": "lathe", "mtbf": 480, "mttr": 30}, …]')
    jobs = serializers.JSONField(
        required=False,
        help_text='[{"name": "A", "release": 0, "due": 50, "weight": 1, "operations": [[[0, 5]], [[1, 3], [2, 4]]]}, …]',
    )
    text = serializers.CharField(required=False, trim_whitespace=False, help_text="An OR-Library, Taillard or CSV file.")
    format = serializers.ChoiceField(choices=["orlib", "taillard", "csv"], required=False)

    def validate(self, attrs):
        has_data = "machines" in attrs or "jobs" in attrs
        if has_data == ("text" in attrs):
            raise serializers.ValidationError({"text": ["Give either machines and jobs, or the text of a file."]})
        if has_data and not ("machines" in attrs and "jobs" in attrs):
            missing = "jobs" if "machines" in attrs else "machines"
            raise serializers.ValidationError({missing: ["Give machines and jobs together."]})
        return attrs


class ProblemFromDatasetSerializer(serializers.Serializer):
    """A problem built from a dataset version, one row per operation (scheduling.services.problem_from_dataset)."""

    department = serializers.SlugField(help_text="The department that will own the problem.")
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    dataset_version = serializers.UUIDField(help_text="A published version you may read: your department's, or shared with it.")
    mapping = serializers.DictField(
        child=serializers.CharField(allow_blank=True, allow_null=True),
        help_text=(
            "The column that gives each role: job, machine and duration are required; sequence (else the row order), "
            'due, release and weight (per job) are optional. {"job": "order", "machine": "station", "duration": "minutes"}'
        ),
    )
    alternatives = serializers.BooleanField(
        required=False,
        default=False,
        help_text=(
            "The flexible job shop: rows with the same job and sequence are one operation, one row per machine that "
            "can run it with its duration there (the sequence column is then required; a machine once per operation)."
        ),
    )


class ScheduleRunSerializer(serializers.ModelSerializer):
    department = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    problem = serializers.PrimaryKeyRelatedField(read_only=True)
    job = serializers.PrimaryKeyRelatedField(read_only=True)
    policy_version = serializers.PrimaryKeyRelatedField(read_only=True, help_text="The learnt policy a `policy` run applied.")
    gap = serializers.SerializerMethodField(help_text="(makespan − lower bound) / makespan, where a bound is known.")

    class Meta:
        model = ScheduleRun
        fields = [
            "id", "department", "problem", "method", "policy_version", "seed", "time_limit", "breakdowns_seed", "status", "job",
            "makespan", "total_tardiness", "weighted_tardiness", "utilisation", "lower_bound", "optimal", "gap",
            "error_message", "created_at", "started_at", "finished_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_gap(self, run) -> float | None:
        if run.makespan and run.lower_bound is not None:
            return round((run.makespan - run.lower_bound) / run.makespan, 6)
        return None


class ScheduleRunDetailSerializer(ScheduleRunSerializer):
    operations = serializers.SerializerMethodField()

    class Meta(ScheduleRunSerializer.Meta):
        fields = [*ScheduleRunSerializer.Meta.fields, "info", "downtimes", "interrupted", "operations"]
        read_only_fields = fields

    def get_operations(self, run) -> list[dict]:
        return [
            {"job": o.job, "op": o.op, "machine": o.machine, "start": o.start, "end": o.end}
            for o in run.operations.order_by("start", "machine", "job")
        ]


class RunStartSerializer(serializers.Serializer):
    problem = serializers.UUIDField()
    method = serializers.ChoiceField(choices=Method.choices)
    time_limit = serializers.FloatField(default=10.0)
    seed = serializers.IntegerField(default=0)
    breakdowns_seed = serializers.IntegerField(required=False, allow_null=True, default=None)
    replications = serializers.IntegerField(
        default=0, help_text="Also measure the schedule under this many seeded draws of breakdowns (0 to 200)."
    )
    policy_version = serializers.UUIDField(
        required=False, allow_null=True, default=None, help_text="For the method policy: the id of the policy version to apply."
    )
    policy_model = serializers.CharField(
        required=False, allow_blank=True, default="", help_text='Instead of policy_version: "department/model"…'
    )
    policy_alias = serializers.SlugField(required=False, default="production", help_text="…and its alias (default production).")


class SchedulePolicySerializer(serializers.Serializer):
    """A learnt policy version you may apply (a model-repository version of task scheduling_policy)."""

    id = serializers.UUIDField()
    model = serializers.SerializerMethodField(help_text='"department/model"')
    name = serializers.CharField(source="model.name")
    number = serializers.IntegerField()
    aliases = serializers.SerializerMethodField()
    metrics = serializers.JSONField(help_text="mean_gap, mean_gap_untrained, wins, worst_gap on the held-out shops.")
    trained_on = serializers.JSONField(source="output.trained_on", help_text="The family it learnt on.")
    created_at = serializers.DateTimeField()

    def get_model(self, version) -> str:
        return f"{version.model.department.slug}/{version.model.slug}"

    def get_aliases(self, version) -> list[str]:
        return sorted(a.name for a in version.aliases.all())


class PolicyTrainSerializer(serializers.Serializer):
    """A family of generated shops to learn on, and the model the version goes to (an existing one or a new name)."""

    department = serializers.SlugField(required=False, help_text="Where a new model is registered.")
    model = serializers.UUIDField(required=False, allow_null=True, default=None, help_text="An existing policy model.")
    model_name = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)
    jobs = serializers.ListField(child=serializers.IntegerField(), min_length=2, max_length=2, default=[5, 10])
    machines = serializers.ListField(child=serializers.IntegerField(), min_length=2, max_length=2, default=[3, 5])
    instances = serializers.IntegerField(default=8, help_text="Training shops.")
    held_out = serializers.IntegerField(default=10, help_text="Shops it is measured on, never trained on.")
    breakdowns = serializers.BooleanField(default=False)
    seconds = serializers.FloatField(default=60.0, help_text=f"The time budget, at most {family.MAX_SECONDS:g} s.")
    episodes = serializers.IntegerField(required=False, allow_null=True, default=None, help_text="Stop after this many.")
    seed = serializers.IntegerField(default=0)
