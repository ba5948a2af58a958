"""Serializers of the alerting API: they validate shapes and present rows; monitoring.alerts.services checks and saves."""

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from lepton import policy
from lepton.crypto import CredentialError
from lepton.models import Department
from monitoring.alerts.models import Alert, AlertKind, AlertRule


class AlertRuleSerializer(serializers.ModelSerializer):
    department = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    model = serializers.UUIDField(source="model_id", read_only=True, allow_null=True)
    dataset = serializers.UUIDField(source="dataset_id", read_only=True, allow_null=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    webhook_secret = serializers.SerializerMethodField(
        help_text="The HMAC-SHA256 key of this rule's webhook signatures; shown to the department's maintainers only."
    )

    class Meta:
        model = AlertRule
        fields = [
            "id", "department", "name", "kind", "model", "dataset", "threshold", "window_minutes",
            "notify_in_app", "notify_email", "webhook_url", "webhook_secret", "enabled",
            "last_evaluated_at", "last_error", "created_by", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(serializers.CharField())
    def get_webhook_secret(self, rule) -> str:
        request = self.context.get("request")
        if request is None or not policy.can(request.user, "change", rule):
            return ""
        try:
            return rule.webhook_secret()
        except CredentialError:  # the keys changed: renew-secret gives the rule a readable one
            return ""


class _RuleFields(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=AlertKind.choices)
    model = serializers.UUIDField(required=False, allow_null=True, help_text="drift_psi, error_rate, p99_latency: one model.")
    dataset = serializers.UUIDField(
        required=False, allow_null=True, help_text="quality_check_failed, dataset_stale: one dataset."
    )
    threshold = serializers.FloatField(
        required=False,
        allow_null=True,
        help_text="PSI (drift_psi, > 0); share 0–1 (error_rate, quota_nearly_used); ms (p99_latency); days (dataset_stale).",
    )
    window_minutes = serializers.IntegerField(required=False, help_text="error_rate, p99_latency, job_failed: 1 to 10080.")
    notify_in_app = serializers.BooleanField(required=False)
    notify_email = serializers.BooleanField(required=False)
    webhook_url = serializers.CharField(required=False, allow_blank=True, max_length=500)
    enabled = serializers.BooleanField(required=False)


class AlertRuleCreateSerializer(_RuleFields):
    department = serializers.SlugField()

    def validate_department(self, slug):
        department = policy.visible_to(self.context["request"].user, Department).filter(slug=slug).first()
        if department is None:
            raise serializers.ValidationError(_("No department with this slug that you belong to."))
        return department


class AlertRuleUpdateSerializer(_RuleFields):
    pass


class AlertSerializer(serializers.ModelSerializer):
    department = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    rule = serializers.UUIDField(source="rule_id", read_only=True)
    rule_name = serializers.CharField(source="rule.name", read_only=True)
    acknowledged_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    resolved_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Alert
        fields = [
            "id", "department", "rule", "rule_name", "kind", "dedup_key", "state", "value", "message",
            "first_seen_at", "last_seen_at", "acknowledged_at", "acknowledged_by", "resolved_at", "resolved_by",
        ]  # fmt: skip
        read_only_fields = fields
