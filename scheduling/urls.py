from django.urls import path

from scheduling import views

app_name = "scheduling"
urlpatterns = [
    path("", views.index, name="index"),
    path("problems/new/", views.problem_edit, name="problem_new"),
    path("problems/from-dataset/", views.problem_from_dataset, name="problem_from_dataset"),
    path("problems/<uuid:pk>/", views.problem, name="problem"),
    path("problems/<uuid:pk>/copy/", views.problem_edit, name="problem_copy"),
    path("problems/<uuid:pk>/delete/", views.problem_delete, name="problem_delete"),
    path("runs/<uuid:pk>/", views.run, name="run"),
    path("runs/<uuid:pk>/cancel/", views.run_cancel, name="run_cancel"),
    path("policies/", views.policies, name="policies"),
]
