from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('models_repo', '0003_run_analysis'),
    ]

    operations = [
        migrations.AddField(
            model_name='modelversion',
            name='status',
            field=models.CharField(choices=[('ready', 'Ready'), ('validating', 'Being validated'), ('invalid', 'Refused at validation')], default='ready', max_length=20),
        ),
        migrations.AddField(
            model_name='modelversion',
            name='status_reason',
            field=models.TextField(blank=True),
        ),
    ]
