"""Viewsets of the alerting API: querysets through the policy, every change through monitoring.alerts.services."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from lepton.api.serializers import ErrorSerializer
from monitoring.alerts import selectors, services
from monitoring.alerts.api.serializers import (
    AlertRuleCreateSerializer,
    AlertRuleSerializer,
    AlertRuleUpdateSerializer,
    AlertSerializer,
)
from monitoring.alerts.filtersets import AlertFilterSet, AlertRuleFilterSet

ERRORS = {code: ErrorSerializer for code in (400, 401, 403, 404, 409, 429)}
RULE_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The rule's id.")
ALERT_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The alert's id.")


@extend_schema_view(
    list=extend_schema(summary="Alert rules of your departments", responses={200: AlertRuleSerializer(many=True), **ERRORS}),
    retrieve=extend_schema(summary="One alert rule", parameters=[RULE_ID], responses={200: AlertRuleSerializer, **ERRORS}),
    create=extend_schema(
        summary="Create an alert rule (maintainers)",
        request=AlertRuleCreateSerializer,
        responses={201: AlertRuleSerializer, **ERRORS},
    ),
    partial_update=extend_schema(
        summary="Change, disable or enable an alert rule (maintainers)",
        parameters=[RULE_ID],
        request=AlertRuleUpdateSerializer,
        responses={200: AlertRuleSerializer, **ERRORS},
    ),
    destroy=extend_schema(
        summary="Delete an alert rule and its alerts (maintainers)", parameters=[RULE_ID], responses={204: None, **ERRORS}
    ),  # fmt: skip
)
class AlertRuleViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = AlertRuleSerializer
    filterset_class = AlertRuleFilterSet
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return selectors.rules_visible(self.request.user).order_by("department__slug", "name", "pk")

    def create(self, request, *args, **kwargs):
        serializer = AlertRuleCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        rule = services.rule_create(actor=request.user, **serializer.validated_data)
        return Response(AlertRuleSerializer(rule, context=self.get_serializer_context()).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        serializer = AlertRuleUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        rule = services.rule_update(actor=request.user, rule=self.get_object(), **serializer.validated_data)
        return Response(AlertRuleSerializer(rule, context=self.get_serializer_context()).data)

    def destroy(self, request, *args, **kwargs):
        services.rule_delete(actor=request.user, rule=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Give the rule a new webhook signing secret (maintainers); the answer shows it",
        parameters=[RULE_ID],
        request=None,
        responses={200: AlertRuleSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"], url_path="renew-secret", filter_backends=[])
    def renew_secret(self, request, pk=None):
        rule = services.rule_secret_renew(actor=request.user, rule=self.get_object())
        return Response(AlertRuleSerializer(rule, context=self.get_serializer_context()).data)


@extend_schema_view(
    list=extend_schema(summary="Alerts of your departments, newest first", responses={200: AlertSerializer(many=True), **ERRORS}),
    retrieve=extend_schema(summary="One alert", parameters=[ALERT_ID], responses={200: AlertSerializer, **ERRORS}),
)
class AlertViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = AlertSerializer
    filterset_class = AlertFilterSet

    def get_queryset(self):
        return selectors.alerts_visible(self.request.user)

    @extend_schema(summary="Acknowledge an open alert (members)", parameters=[ALERT_ID], request=None,
                   responses={200: AlertSerializer, **ERRORS})  # fmt: skip
    @action(detail=True, methods=["post"], filter_backends=[])
    def acknowledge(self, request, pk=None):
        alert = services.alert_acknowledge(actor=request.user, alert=self.get_object())
        return Response(AlertSerializer(alert).data)

    @extend_schema(summary="Resolve an alert (members)", parameters=[ALERT_ID], request=None,
                   responses={200: AlertSerializer, **ERRORS})  # fmt: skip
    @action(detail=True, methods=["post"], filter_backends=[])
    def resolve(self, request, pk=None):
        alert = services.alert_resolve(actor=request.user, alert=self.get_object())
        return Response(AlertSerializer(alert).data)
