"""Running confidently on AWS SageMaker: fine-tuning jobs, a multi-adapter LMI endpoint, classify, delete.

``settings`` (where: region, role, bucket, images), ``packaging`` (what is uploaded), ``calls`` (AWS
calls as data: printed by ``--dry-run`` or run), ``sagemaker`` (train, deploy and delete plans),
``remote`` (classify with an adapter's calibrator and policy), ``entry`` (the training job's script).
boto3 is imported only when a command talks to AWS.
"""
