"""Browser routes of the core (mounted at "/"); each part mounts its own under its prefix."""

from django.contrib.auth import views as auth_views
from django.urls import path

from lepton import web_views

urlpatterns = [
    path("", web_views.home, name="home"),
    path("accounts/login/", web_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("departments/switch/", web_views.department_switch, name="department_switch"),
    path("departments/<slug:slug>/", web_views.department_home, name="department_home"),
    path("departments/<slug:slug>/members/add/", web_views.membership_add, name="membership_add"),
    path(
        "departments/<slug:slug>/members/<str:username>/role/",
        web_views.membership_change_role,
        name="membership_change_role",
    ),
    path("departments/<slug:slug>/members/<str:username>/remove/", web_views.membership_remove, name="membership_remove"),
    path("jobs/", web_views.jobs, name="jobs"),
    path("jobs/start/", web_views.job_start, name="job_start"),
    path("jobs/<uuid:pk>/", web_views.job_detail, name="job_detail"),
    path("jobs/<uuid:pk>/cancel/", web_views.job_cancel, name="job_cancel"),
    path("audit/", web_views.audit_log, name="audit_log"),
    path("audit/access/", web_views.audit_access, name="audit_access"),
    path("audit/export.csv", web_views.audit_export, name="audit_export"),
    path("profile/", web_views.profile, name="profile"),
    path("profile/tokens/", web_views.token_create, name="token_create"),
    path("profile/tokens/<uuid:pk>/revoke/", web_views.token_revoke, name="token_revoke"),
]
