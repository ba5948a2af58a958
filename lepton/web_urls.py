"""Browser routes of the core (mounted at "/"); each part mounts its own under its prefix."""

from django.contrib.auth import views as auth_views
from django.urls import path

from lepton import oidc, web_views
from lepton.collab import views as collab_views

urlpatterns = [
    path("", web_views.home, name="home"),
    path("accounts/login/", web_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Single sign-on (lepton/oidc.py): public, like the login page.
    path("auth/oidc/login/", oidc.oidc_login, name="oidc_login"),
    path("auth/oidc/callback/", oidc.oidc_callback, name="oidc_callback"),
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
    # Working together (lepton/collab/): shares, access requests, comments, watches, activity, notices.
    path("shares/new/", collab_views.share_create, name="share_create"),
    path("shares/<uuid:pk>/revoke/", collab_views.share_revoke, name="share_revoke"),
    path("shares/discoverable/", collab_views.discoverable_toggle, name="discoverable_toggle"),
    path("access/", collab_views.access_inbox, name="access_inbox"),
    path("access/discover/", collab_views.discover, name="access_discover"),
    path(
        "access/request/<str:object_type>/<str:object_id>/",
        collab_views.access_request_create,
        name="access_request_create",
    ),
    path("access/<uuid:pk>/approve/", collab_views.access_request_approve, name="access_request_approve"),
    path("access/<uuid:pk>/reject/", collab_views.access_request_reject, name="access_request_reject"),
    path("access/<uuid:pk>/withdraw/", collab_views.access_request_withdraw, name="access_request_withdraw"),
    path("comments/new/", collab_views.comment_add, name="comment_add"),
    path("watch/", collab_views.watch_toggle, name="watch_toggle"),
    path("departments/<slug:slug>/activity/", collab_views.department_activity, name="department_activity"),
    path("notices/", collab_views.notice_list, name="notice_list"),
    path("notices/read/", collab_views.notices_read, name="notices_read"),
]
