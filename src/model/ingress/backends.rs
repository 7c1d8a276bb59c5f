//! Ingress backends: a Service port, or an `actions.${name}` annotation, as the action of a
//! rule, with the target groups it forwards to and the authentication it asks for.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort};
use k8s_openapi::api::networking::v1::{Ingress, IngressBackend};

use super::{Inputs, WORDING};
use crate::k8s::annotations::{self, ActionSpec, AuthIdp, IngressConfig, TargetRef};
use crate::model::intent::{World, setting_warning, warn_once};
use crate::model::target_groups::{self, TargetSettings};
use crate::model::*;

/// LBC's bodies of the fixed 503 that stands in for a missing backend.
const NO_SERVICE_BODY: &str = "Backend service does not exist";
const NO_ACTION_BODY: &str = "Backend action does not exist";
/// Ours: LBC fails the build on a missing Service port.
const NO_PORT_BODY: &str = "Backend service port does not exist";

/// The fixed 503 a rule answers while its backend is missing (as LBC's, text/plain).
fn unavailable(body: &str) -> Action {
    Action::FixedResponse { status_code: "503".into(), content_type: Some("text/plain".into()), message_body: Some(body.into()) }
}

/// Where a Service backend's requests go.
enum Destination {
    /// The name of its target group.
    TargetGroup(String),
    /// Nowhere: the Service or its port is missing; a fixed 503 with this body.
    Missing(&'static str),
}

/// One member's backends as they are translated: the target groups made so far and the
/// warnings they raised.
pub struct Backends<'i, 'a> {
    pub inputs: &'i Inputs<'a>,
    pub world: &'i World<'a>,
    pub ing: &'i Ingress,
    pub key: &'i ObjKey,
    pub cfg: &'i IngressConfig,
    pub target_groups: Vec<TargetGroup>,
    pub warnings: Vec<Problem>,
}

impl Backends<'_, '_> {
    /// The action of an Ingress backend: an `actions.${name}` annotation when the port is
    /// `use-annotation`, else a forward to the Service port's target group. A missing
    /// annotation, Service or port answers a fixed 503 with a warning (LBC's
    /// `--tolerate-non-existent-backend-*`), or fails the member when not tolerated; an
    /// invalid annotation is an error (the member is left out).
    pub fn action(&mut self, backend: &IngressBackend) -> Result<Action, String> {
        let Some(svc_ref) = backend.service.as_ref() else {
            return Err("backend is not a Service; only Service backends are supported".into());
        };
        let port_ref = svc_ref.port.as_ref();
        let port_str = match (port_ref.and_then(|p| p.number), port_ref.and_then(|p| p.name.as_ref())) {
            (Some(n), _) => n.to_string(),
            (None, Some(name)) => name.clone(),
            (None, None) => return Err(format!("backend Service {}/{} has no port", self.key.namespace, svc_ref.name)),
        };
        if port_str == "use-annotation" {
            let Some(spec) = self.cfg.actions.get(&svc_ref.name).cloned() else {
                let missing =
                    format!("backend {:?} uses annotation {}actions.{}, which is not set", svc_ref.name, annotations::PREFIX, svc_ref.name);
                if !self.world.options.tolerate_missing_backend_action {
                    return Err(missing);
                }
                warn_once(&mut self.warnings, self.key, format!("{missing}; its rules answer 503 ({NO_ACTION_BODY:?}) until it is"));
                return Ok(unavailable(NO_ACTION_BODY));
            };
            return match spec {
                ActionSpec::Fixed(action) => Ok(action),
                ActionSpec::Forward { targets, stickiness_seconds } => {
                    let mut target_groups = Vec::new();
                    for (target, weight) in targets {
                        let target_group = match target {
                            TargetRef::Arn(arn) => arn,
                            // One missing Service makes the whole forward a 503 (LBC fails the
                            // build unless the forward is to that one Service alone).
                            TargetRef::Service { name, port } => match self.service_target_group(&name, &port)? {
                                Destination::TargetGroup(tg) => tg,
                                Destination::Missing(body) => return Ok(unavailable(body)),
                            },
                        };
                        target_groups.push(WeightedTargetGroup { target_group, weight });
                    }
                    if let ([one], None) = (target_groups.as_mut_slice(), stickiness_seconds) {
                        one.weight = None;
                    }
                    Ok(Action::Forward { target_groups, stickiness_seconds })
                }
            };
        }
        Ok(match self.service_target_group(&svc_ref.name, &port_str)? {
            Destination::TargetGroup(tg) => Action::forward(&tg),
            Destination::Missing(body) => unavailable(body),
        })
    }

    /// The authentication a backend asks for (`auth-*` on the Ingress or its Service), with
    /// the OIDC client credentials read from the named Secret.
    pub fn auth(&self, backend: &IngressBackend) -> Result<Option<Authenticate>, String> {
        let empty = BTreeMap::new();
        let svc = backend
            .service
            .as_ref()
            .and_then(|s| self.inputs.services.get(&ObjKey { namespace: self.key.namespace.clone(), name: s.name.clone() }));
        let cfg = annotations::parse_backend_auth(
            self.ing.metadata.annotations.as_ref().unwrap_or(&empty),
            svc.and_then(|s| s.metadata.annotations.as_ref()).unwrap_or(&empty),
        )
        .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))?;
        let Some(cfg) = cfg else { return Ok(None) };
        Ok(Some(match cfg.idp {
            AuthIdp::Oidc { issuer, authorization_endpoint, token_endpoint, user_info_endpoint, secret_name } => {
                let key = ObjKey { namespace: self.key.namespace.clone(), name: secret_name };
                let data = self.inputs.secrets.get(&key).ok_or_else(|| {
                    format!("Secret {key} named by annotation {}auth-idp-oidc (secretName) not found", annotations::PREFIX)
                })?;
                let get = |k: &str| data.get(k).ok_or_else(|| format!("Secret {key} has no key {k}"));
                // As LBC: the legacy key clientId too, and a trailing newline (from `echo` or a
                // file) is not part of the credentials.
                let client_id = data
                    .get("clientID")
                    .or_else(|| data.get("clientId"))
                    .ok_or_else(|| format!("Secret {key} has no key clientID"))?
                    .trim_end()
                    .to_string();
                let client_secret = get("clientSecret")?.trim_end_matches(char::is_control).to_string();
                Authenticate::Oidc {
                    issuer,
                    authorization_endpoint,
                    token_endpoint,
                    user_info_endpoint,
                    client_id,
                    client_secret,
                    session: cfg.session,
                }
            }
            AuthIdp::Cognito { user_pool_arn, user_pool_client_id, user_pool_domain } => {
                Authenticate::Cognito { user_pool_arn, user_pool_client_id, user_pool_domain, session: cfg.session }
            }
        }))
    }

    /// The target group of a Service port, made on first use; `Missing` (with a warning)
    /// when the Service or port does not exist and `--tolerate-non-existent-backend-service`
    /// allows it, else an error.
    fn service_target_group(&mut self, svc_name: &str, port_str: &str) -> Result<Destination, String> {
        let tolerate = self.world.options.tolerate_missing_backend_service;
        let svc_key = ObjKey { namespace: self.key.namespace.clone(), name: svc_name.to_string() };
        let Some(svc) = self.inputs.services.get(&svc_key) else {
            let missing = format!("backend Service {svc_key} not found");
            if !tolerate {
                return Err(missing);
            }
            warn_once(&mut self.warnings, self.key, format!("{missing}; its rules answer 503 ({NO_SERVICE_BODY:?}) until it exists"));
            return Ok(Destination::Missing(NO_SERVICE_BODY));
        };
        let Some(svc_port) = target_groups::service_port(svc, port_str) else {
            let missing = format!("backend Service {svc_key} has no port {port_str}");
            if !tolerate {
                return Err(missing);
            }
            warn_once(&mut self.warnings, self.key, format!("{missing}; its rules answer 503 ({NO_PORT_BODY:?}) until it does"));
            return Ok(Destination::Missing(NO_PORT_BODY));
        };
        let backend_ref = BackendRef {
            cluster: self.inputs.cluster,
            group: &self.inputs.group,
            ing: self.ing,
            target_type: self.cfg.target_type,
            default_target_type: self.world.options.default_target_type,
        };
        let (mut backend, warnings) = backend_ref.backend(svc, svc_port, port_str, self.key)?;
        let (name, port) = target_groups::name_and_port(self.inputs.cluster, &self.inputs.group, &WORDING, &mut backend)?;
        // As LBC: IngressClassParams tags over the Service's over the Ingress's, key by key.
        if let Some(Ok(p)) = self.inputs.params.get(self.key) {
            backend.settings.tags.extend(p.tags.iter().flatten().map(|t| (t.key.clone(), t.value.clone())));
        }
        target_groups::check(&backend, &WORDING)?;
        self.warnings.extend(warnings.into_iter().map(|w| setting_warning(self.key, w.to_string())));
        if self.target_groups.iter().any(|tg| tg.name == name) {
            return Ok(Destination::TargetGroup(name));
        }
        let resource_id = format!("{}/{}-{}:{}", self.key.namespace, self.key.name, svc_key.name, port_str);
        self.target_groups.push(target_groups::build(self.world, backend, name.clone(), port, resource_id));
        Ok(Destination::TargetGroup(name))
    }
}

/// What names a backend's target group: the group, the Ingress and its settings.
pub struct BackendRef<'a> {
    pub cluster: &'a str,
    pub group: &'a GroupId,
    pub ing: &'a Ingress,
    /// From IngressClassParams: wins over annotations.
    pub target_type: Option<TargetType>,
    pub default_target_type: TargetType,
}

impl BackendRef<'_> {
    /// A Service port as a backend, with the target settings the Ingress's and the
    /// Service's annotations give it (and the remarks they raised).
    fn backend<'s>(
        &self,
        svc: &'s Service,
        svc_port: &'s ServicePort,
        port_str: &'s str,
        owner: &'s ObjKey,
    ) -> Result<(target_groups::Backend<'s>, Vec<annotations::AnnotationError>), String> {
        let empty = BTreeMap::new();
        let cfg = annotations::parse_backend(
            self.ing.metadata.annotations.as_ref().unwrap_or(&empty),
            svc.metadata.annotations.as_ref().unwrap_or(&empty),
            self.default_target_type,
        )
        .map_err(|errors| {
            let svc_key = ObjKey {
                namespace: svc.metadata.namespace.clone().unwrap_or_default(),
                name: svc.metadata.name.clone().unwrap_or_default(),
            };
            format!("backend Service {svc_key}: {}", errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
        })?;
        let settings = TargetSettings {
            target_type: self.target_type.unwrap_or(cfg.target_type),
            node_labels: cfg.node_labels,
            attributes: cfg.attributes,
            protocol: cfg.protocol,
            protocol_version: cfg.protocol_version,
            health_check: cfg.health_check,
            tags: cfg.tags,
        };
        Ok((target_groups::Backend { owner, service: svc, port: svc_port, port_ref: port_str, settings }, cfg.warnings))
    }

    /// The name of a Service port's target group and its target type.
    pub fn target_group(&self, svc: &Service, svc_port: &ServicePort, port_str: &str) -> Result<(String, TargetType), String> {
        let owner = ObjKey {
            namespace: self.ing.metadata.namespace.clone().unwrap_or_default(),
            name: self.ing.metadata.name.clone().unwrap_or_default(),
        };
        let (mut backend, _) = self.backend(svc, svc_port, port_str, &owner)?;
        let (name, _) = target_groups::name_and_port(self.cluster, self.group, &WORDING, &mut backend)?;
        Ok((name, backend.settings.target_type))
    }
}
