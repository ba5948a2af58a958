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


class FeedbackCreateSerializer(serializers.Serializer):
    prediction_id = serializers.UUIDField(help_text="The `prediction_id` the predict answer carried.")
    actual = serializers.JSONField(
        help_text="The true values: a list with one per predicted row, in the request's order (a single value for one row)."
    )


class FeedbackSerializer(serializers.Serializer):
    prediction_id = serializers.UUIDField()
    version = serializers.IntegerField(source="version.number")
    predicted_at = serializers.DateTimeField(help_text="When the prediction was served.")
    actual = serializers.JSONField()
    rows = serializers.IntegerField(help_text="Rows scored (those whose prediction is logged).")
    correct = serializers.IntegerField(allow_null=True, help_text="Rows predicted right (classification).")
    abs_error_sum = serializers.FloatField(allow_null=True, help_text="Sum of absolute errors (regression).")
    squared_error_sum = serializers.FloatField(allow_null=True, help_text="Sum of squared errors (regression).")
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)


class TrafficTotalsSerializer(serializers.Serializer):
    requests = serializers.IntegerField()
    rows = serializers.IntegerField(help_text="Rows predicted by the requests served.")
    errors = serializers.IntegerField(help_text="Requests refused (status 400 and above).")
    errors_5xx = serializers.IntegerField()
    error_rate = serializers.FloatField(allow_null=True)
    p99_ms = serializers.FloatField(allow_null=True, help_text="From latency buckets, interpolated within one.")
    mean_ms = serializers.FloatField(allow_null=True)


class OutputsSerializer(serializers.Serializer):
    kind = serializers.CharField(required=False, help_text="classes, or numbers (keys with two significant digits).")
    counts = serializers.DictField(child=serializers.IntegerField(), required=False)


class PerformanceSerializer(serializers.Serializer):
    kind = serializers.CharField(allow_null=True, help_text="classification, regression, or null without feedback.")
    rows = serializers.ListField(child=serializers.IntegerField(), help_text="Rows with ground truth per bucket.")
    accuracy = serializers.ListField(child=serializers.FloatField(allow_null=True))
    mae = serializers.ListField(child=serializers.FloatField(allow_null=True))
    rmse = serializers.ListField(child=serializers.FloatField(allow_null=True))
    rows_total = serializers.IntegerField()
    accuracy_total = serializers.FloatField(allow_null=True)
    mae_total = serializers.FloatField(allow_null=True)
    rmse_total = serializers.FloatField(allow_null=True)


class DashboardDriftSerializer(serializers.Serializer):
    version = serializers.IntegerField(allow_null=True, help_text="The production version's number.")
    window_end = serializers.DateTimeField(allow_null=True)
    features = FeatureDriftSerializer(many=True, help_text="Its latest window, largest PSI first.")


class ModelDashboardSerializer(serializers.Serializer):
    model = serializers.UUIDField(source="model.pk")
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    step = serializers.CharField(help_text="hour (periods up to two days) or day.")
    x = serializers.ListField(child=serializers.CharField(), help_text="Start of each bucket.")
    totals = TrafficTotalsSerializer()
    requests = serializers.ListField(child=serializers.IntegerField())
    errors = serializers.ListField(child=serializers.IntegerField())
    error_rate = serializers.ListField(child=serializers.FloatField(allow_null=True))
    p50 = serializers.ListField(child=serializers.FloatField(allow_null=True), help_text="Latency in ms.")
    p95 = serializers.ListField(child=serializers.FloatField(allow_null=True))
    p99 = serializers.ListField(child=serializers.FloatField(allow_null=True))
    versions = serializers.DictField(child=serializers.ListField(child=serializers.IntegerField()),
                                     help_text="Requests per bucket of each version served.")  # fmt: skip
    outputs = OutputsSerializer(help_text="The predictions served over the period.")
    performance = PerformanceSerializer(help_text="From the feedback posted, by when the prediction was served.")
    drift = DashboardDriftSerializer()
