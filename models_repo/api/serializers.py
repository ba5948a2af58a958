"""Serializers of the model-repository API: they validate and present; services do the writes."""

from rest_framework import serializers

from models_repo.models import AliasEvent, ModelAlias, ModelVersion, PromotionRequest, RegisteredModel, TrainingRun


class TrainingRunSerializer(serializers.ModelSerializer):
    department = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    registered_model = serializers.PrimaryKeyRelatedField(read_only=True)
    job = serializers.PrimaryKeyRelatedField(read_only=True)
    analysis_job = serializers.PrimaryKeyRelatedField(
        read_only=True, help_text="The follow-up job adding the learning curve and importance (scikit-learn runs)."
    )

    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "department",
            "name",
            "dataset_version",
            "dataset_label",
            "spec",
            "registered_model",
            "rerun_of",
            "status",
            "job",
            "analysis_job",
            "flavor",
            "task",
            "algorithm",
            "params",
            "metrics",
            "cv",
            "candidates",
            "importance",
            "warnings",
            "input_schema",
            "output",
            "packages",
            "seconds",
            "resources",
            "artifact_sha256",
            "error_code",
            "error_message",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class TrainingRunDetailSerializer(TrainingRunSerializer):
    class Meta(TrainingRunSerializer.Meta):
        fields = [*TrainingRunSerializer.Meta.fields, "curves", "epochs", "holdout"]
        read_only_fields = fields


class TrainingStartSerializer(serializers.Serializer):
    dataset_version = serializers.UUIDField(help_text="A published version of a dataset you may use.")
    spec = serializers.JSONField(help_text="task, target, features, split, cv_folds, algorithms, search, seed, keras…")
    registered_model = serializers.UUIDField(required=False, allow_null=True, help_text="Register the result here.")
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class RegisteredModelSerializer(serializers.ModelSerializer):
    department = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    aliases = serializers.SerializerMethodField()

    class Meta:
        model = RegisteredModel
        fields = [
            "id",
            "department",
            "slug",
            "name",
            "description",
            "tags",
            "task",
            "card",
            "gate_metric",
            "gate_threshold",
            "aliases",
            "created_at",
            "updated_at",
            "archived_at",
        ]
        read_only_fields = fields

    def get_aliases(self, model) -> dict[str, int]:
        return {a.name: a.version.number for a in model.aliases.all()}


class ModelCreateSerializer(serializers.Serializer):
    department = serializers.SlugField()
    name = serializers.CharField(max_length=200)
    slug = serializers.SlugField(max_length=80, required=False, allow_blank=True, default="")
    description = serializers.CharField(required=False, allow_blank=True, default="")
    tags = serializers.ListField(child=serializers.CharField(max_length=50), required=False, default=list)
    task = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")
    card = serializers.DictField(required=False, default=dict)


class ModelUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    tags = serializers.ListField(child=serializers.CharField(max_length=50), required=False)
    card = serializers.DictField(required=False)
    gate_metric = serializers.CharField(max_length=40, required=False, allow_blank=True)
    gate_threshold = serializers.FloatField(required=False, allow_null=True)


class ModelVersionSerializer(serializers.ModelSerializer):
    run = serializers.PrimaryKeyRelatedField(read_only=True)
    aliases = serializers.SlugRelatedField(slug_field="name", many=True, read_only=True)

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "number",
            "source",
            "run",
            "flavor",
            "task",
            "artifact_sha256",
            "artifact_bytes",
            "input_schema",
            "output",
            "metrics",
            "dataset_version",
            "aliases",
            "description",
            "status",
            "status_reason",
            "created_at",
            "archived_at",
        ]
        read_only_fields = fields


class AliasSetSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, help_text="The version number the alias should point at.")
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class ModelAliasSerializer(serializers.ModelSerializer):
    version = serializers.SlugRelatedField(slug_field="number", read_only=True)
    updated_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = ModelAlias
        fields = ["name", "version", "updated_by", "updated_at"]
        read_only_fields = fields


class AliasEventSerializer(serializers.ModelSerializer):
    from_version = serializers.SlugRelatedField(slug_field="number", read_only=True)
    to_version = serializers.SlugRelatedField(slug_field="number", read_only=True)
    actor = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = AliasEvent
        fields = ["alias", "from_version", "to_version", "actor", "reason", "rollback", "created_at"]
        read_only_fields = fields


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class PromotionRequestSerializer(serializers.ModelSerializer):
    model = serializers.PrimaryKeyRelatedField(read_only=True)
    version = serializers.SlugRelatedField(slug_field="number", read_only=True)
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    decided_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = PromotionRequest
        fields = [
            "id",
            "model",
            "version",
            "alias",
            "status",
            "gate",
            "reason",
            "requested_by",
            "automatic",
            "decided_by",
            "decided_at",
            "decision_note",
            "created_at",
        ]
        read_only_fields = fields


class PromotionCreateSerializer(serializers.Serializer):
    model = serializers.UUIDField()
    version = serializers.IntegerField(min_value=1)
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class DecisionSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="")


class ArchiveSerializer(serializers.Serializer):
    archived = serializers.BooleanField(default=True, help_text="false restores.")
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)


class BatchPredictSerializer(serializers.Serializer):
    dataset_version = serializers.UUIDField(help_text="A published version of a dataset you may use.")
    version = serializers.IntegerField(min_value=1, required=False, help_text="A version number (else the alias).")
    alias = serializers.SlugField(max_length=40, required=False, default="production")
    output_name = serializers.CharField(max_length=200, help_text="The dataset that receives the predictions.")
