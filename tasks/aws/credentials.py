"""Connector credentials, as a task's params give them.

``{type: inherit}`` uses the delegate's own credential chain (environment, profile,
container or instance role). ``{type: access_key, accessKeyId: ..., secretKeyRef: NAME}``
takes the secret access key from the task's secrets, never from params. Either may name
``roleArn`` to assume (with optional ``externalId``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Creds(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    role_arn: str | None = Field(default=None, alias="roleArn",
                                 description="a role to assume with these credentials")
    external_id: str | None = Field(default=None, alias="externalId",
                                    description="the external id the role's trust policy asks for")
    session_name: str = Field(default="ecs-delegate", alias="sessionName",
                              description="the assumed role's session name (in CloudTrail)")


class InheritCredentials(_Creds):
    type: Literal["inherit"] = Field(
        default="inherit", description="the delegate's own credential chain (environment, "
                                       "profile, container or instance role)")


class AccessKeyCredentials(_Creds):
    type: Literal["access_key"] = "access_key"
    access_key_id: str = Field(alias="accessKeyId", description="the access key id")
    secret_key_ref: str = Field(
        alias="secretKeyRef",
        description="name of the task secret that holds the secret access key",
    )
    session_token_ref: str | None = Field(
        default=None, alias="sessionTokenRef",
        description="name of the task secret that holds a session token, if any")


Credentials = Annotated[InheritCredentials | AccessKeyCredentials, Field(discriminator="type")]
