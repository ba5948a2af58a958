"""Serializers of the Monitoring API (they present; nothing here writes)."""

from rest_framework import serializers


class DriftBinsSerializer(serializers.Serializer):
    labels = serializers.ListField(child=serializers.CharField(), required=False)
    expected = serializers.ListField(child=serializers.FloatField(), required=False, help_text="Shares in the training rows.")
    actual = serializers.ListField(child=serializers.FloatField(), required=False, help_text="Shares in the window.")


class FeatureDriftSerializer(serializers.Serializer):
    feature = serializers.CharField()
    kind = serializers.CharField(help_text="numeric, categorical or skipped.")
    status = serializers.CharField(help_text="stable, moderate, significant, insufficient or skipped.")
    psi = serializers.FloatField(allow_null=True)
    ks_statistic = serializers.FloatField(allow_null=True, help_text="Two-sample Kolmogorov–Smirnov (numeric inputs).")
    ks_pvalue = serializers.FloatField(allow_null=True)
    sample_size = serializers.IntegerField(help_text="Sampled input rows compared.")
    reason = serializers.CharField(allow_blank=True, help_text="Why there is no value (a code).")
    message = serializers.CharField(allow_blank=True, help_text="The reason in words.")
    bins = DriftBinsSerializer()


class DriftPointSerializer(serializers.Serializer):
    window_end = serializers.DateTimeField()
    psi = serializers.FloatField(allow_null=True)
    status = serializers.CharField()


class DriftSettingsSerializer(serializers.Serializer):
    window_hours = serializers.IntegerField()
    min_sample = serializers.IntegerField()
    psi_moderate = serializers.FloatField()
    psi_significant = serializers.FloatField()


class ModelDriftSerializer(serializers.Serializer):
    model = serializers.UUIDField(source="model.pk")
    version = serializers.IntegerField(source="version.number", allow_null=True, default=None)
    available = serializers.BooleanField(help_text="False when this version can have no drift; `message` says why.")
    reason = serializers.CharField(allow_blank=True)
    message = serializers.CharField(allow_blank=True)
    reference_rows = serializers.IntegerField(help_text="Training rows profiled for the reference.")
    sampled = serializers.IntegerField(help_text="Input rows sampled in the window that ends now.")
    window_start = serializers.DateTimeField(allow_null=True)
    window_end = serializers.DateTimeField(allow_null=True, help_text="End of the latest computed window.")
    features = FeatureDriftSerializer(many=True, help_text="The latest window, largest PSI first.")
    history = serializers.DictField(child=DriftPointSerializer(many=True), help_text="PSI per window, per feature.")
    settings = DriftSettingsSerializer()
