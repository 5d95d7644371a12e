# The document's script for attaching a CloudWatch alarm to the scaling policy a
# deployment created (its placeholders filled). Run by a shell.script step after the
# deploy step `deploy`, with the step's AWS credentials and Region exported.
# Two changes from the document so that it runs at all: its `//` comment lines are shell
# comments here, and put-metric-alarm gets the arguments the AWS CLI requires.

# to fetch scaling policy arn, run this

aws application-autoscaling describe-scaling-policies --service-namespace ecs --resource-id service/<+infra.cluster>/<+execution.steps.deploy.output.serviceName> --region <+infra.region>

# to attach cloud watch alarm to scaling policy.

POLICY_ARN=$(aws application-autoscaling describe-scaling-policies --service-namespace ecs \
  --resource-id service/<+infra.cluster>/<+execution.steps.deploy.output.serviceName> \
  --region <+infra.region> --query 'ScalingPolicies[0].PolicyARN' --output text)
aws cloudwatch put-metric-alarm --alarm-name myapp-cpu-high --alarm-actions "$POLICY_ARN" \
  --metric-name CPUUtilization --namespace AWS/ECS --statistic Average --period 60 \
  --evaluation-periods 1 --threshold 80 --comparison-operator GreaterThanThreshold
echo "alarm myapp-cpu-high now triggers $POLICY_ARN"
