# The infrastructure of the Terraform example and of `delegate demo`'s Terraform act. It
# uses only Terraform's built-in terraform_data resource (no provider to download), and
# hands back where to deploy: the step's outputs become <+provisioner.cluster_name> and
# <+provisioner.region_name>. Its state is kept by the manager (there is no backend block).
variable "cluster_name" { type = string }
variable "region" { type = string }

resource "terraform_data" "cluster" {
  input = { name = var.cluster_name, region = var.region }
}

output "cluster_name" { value = terraform_data.cluster.output.name }
output "region_name" { value = terraform_data.cluster.output.region }
output "connection_token" {
  value     = "token-${terraform_data.cluster.id}"
  sensitive = true # masked in the log and in the step's output
}
