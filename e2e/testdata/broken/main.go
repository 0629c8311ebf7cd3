// Command broken is a fixture of the e2e suite (e2e/localstack_test.go): a namespace, a
// Secret, a ConfigMap and a Deployment deployed to a real API server. With config
// `variant: broken` the Deployment runs as root and the database password is a plaintext literal
// in the ConfigMap and in the container's environment, so the policy pack must stop `pulumi up`
// before anything reaches the cluster; `variant: clean` is the same program hardened, and
// proves the objects do reach the cluster when nothing is wrong.
//
// The broken variant also writes the Secret's stringData as a plaintext literal. No rule can see
// that one: the kubernetes provider's Check marks a Secret's data and stringData as Pulumi
// secrets before any analyzer sees them, so the value is encrypted in the state whatever the
// program wrote. The test still shows that this Secret never reaches the API server, because
// the other violations stop the whole update in its preview.
package main

import (
	"fmt"
	"os"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	networkingv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/networking/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"
)

// Names the test looks up in the cluster.
const (
	namespace  = "e2e-broken"
	appName    = "app"
	secretName = "app-db"
	configName = "app-config"
)

func main() { pulumi.Run(run) }

func run(ctx *pulumi.Context) error {
	cfg := config.New(ctx, "")
	path, err := cfg.Try("kubeconfig")
	if err != nil {
		return fmt.Errorf("config kubeconfig: %w (fix: pulumi config set kubeconfig PATH)", err)
	}
	variant := cfg.Get("variant")
	if variant != "broken" && variant != "clean" {
		return fmt.Errorf("config variant: %q is neither broken nor clean", variant)
	}
	broken := variant == "broken"
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config kubeconfig: %w", err)
	}
	k8s, err := kubernetes.NewProvider(ctx, "e2e", &kubernetes.ProviderArgs{
		Kubeconfig:            pulumi.ToSecret(pulumi.String(string(raw))).(pulumi.StringOutput),
		EnableServerSideApply: pulumi.Bool(true),
	})
	if err != nil {
		return err
	}
	opts := []pulumi.ResourceOption{pulumi.Provider(k8s)}

	labels := pulumi.StringMap{}
	for _, mode := range []string{"enforce", "audit", "warn"} {
		labels["pod-security.kubernetes.io/"+mode] = pulumi.String("restricted")
	}
	ns, err := corev1.NewNamespace(ctx, namespace, &corev1.NamespaceArgs{
		Metadata: metav1.ObjectMetaArgs{Name: pulumi.String(namespace), Labels: labels},
	}, opts...)
	if err != nil {
		return err
	}
	inNS := append(opts, pulumi.DependsOn([]pulumi.Resource{ns}))
	meta := func(name string) metav1.ObjectMetaArgs {
		return metav1.ObjectMetaArgs{Name: pulumi.String(name), Namespace: pulumi.String(namespace),
			Annotations: pulumi.StringMap{"pulumi.com/skipAwait": pulumi.String("true")}}
	}
	if _, err := networkingv1.NewNetworkPolicy(ctx, "default-deny", &networkingv1.NetworkPolicyArgs{
		Metadata: meta("default-deny"),
		Spec: networkingv1.NetworkPolicySpecArgs{
			PodSelector: metav1.LabelSelectorArgs{},
			PolicyTypes: pulumi.ToStringArray([]string{"Ingress", "Egress"}),
		},
	}, inNS...); err != nil {
		return err
	}
	if _, err := corev1.NewServiceAccount(ctx, appName, &corev1.ServiceAccountArgs{
		Metadata: meta(appName), AutomountServiceAccountToken: pulumi.Bool(false),
	}, inNS...); err != nil {
		return err
	}

	var password pulumi.StringInput = pulumi.ToSecret(pulumi.String("e2e-fixture-password")).(pulumi.StringOutput)
	if broken {
		password = pulumi.String("e2e-fixture-password")
	}
	if _, err := corev1.NewSecret(ctx, secretName, &corev1.SecretArgs{
		Metadata:   meta(secretName),
		Type:       pulumi.String("Opaque"),
		StringData: pulumi.StringMap{"password": password},
	}, inNS...); err != nil {
		return err
	}
	settings := pulumi.StringMap{"LOG_LEVEL": pulumi.String("info")}
	dbPassword := corev1.EnvVarArgs{
		Name: pulumi.String("DB_PASSWORD"),
		ValueFrom: &corev1.EnvVarSourceArgs{SecretKeyRef: &corev1.SecretKeySelectorArgs{
			Name: pulumi.String(secretName), Key: pulumi.String("password"),
		}},
	}
	if broken {
		// The password as a plaintext literal where anyone with read access to ConfigMaps or Pods
		// sees it, and in the Pulumi state unencrypted.
		settings["DB_PASSWORD"] = pulumi.String("e2e-fixture-password")
		dbPassword = corev1.EnvVarArgs{Name: pulumi.String("DB_PASSWORD"), Value: pulumi.String("e2e-fixture-password")}
	}
	if _, err := corev1.NewConfigMap(ctx, configName, &corev1.ConfigMapArgs{
		Metadata: meta(configName), Data: settings,
	}, inNS...); err != nil {
		return err
	}

	no, yes, uid := false, true, 10001
	if broken {
		yes, uid = false, 0 // a root container
	}
	_, err = appsv1.NewDeployment(ctx, appName, &appsv1.DeploymentArgs{
		Metadata: meta(appName),
		Spec: appsv1.DeploymentSpecArgs{
			Replicas: pulumi.Int(1),
			Selector: &metav1.LabelSelectorArgs{MatchLabels: pulumi.StringMap{"app": pulumi.String(appName)}},
			Template: corev1.PodTemplateSpecArgs{
				Metadata: &metav1.ObjectMetaArgs{Labels: pulumi.StringMap{"app": pulumi.String(appName)}},
				Spec: corev1.PodSpecArgs{
					ServiceAccountName:           pulumi.String(appName),
					AutomountServiceAccountToken: pulumi.Bool(false),
					SecurityContext: &corev1.PodSecurityContextArgs{
						RunAsNonRoot: pulumi.Bool(yes), RunAsUser: pulumi.Int(uid), RunAsGroup: pulumi.Int(10001),
						SeccompProfile: &corev1.SeccompProfileArgs{Type: pulumi.String("RuntimeDefault")},
					},
					Containers: corev1.ContainerArray{corev1.ContainerArgs{
						Name:            pulumi.String(appName),
						Image:           pulumi.String("infralab.local/healthcare-api:0.1.0"),
						ImagePullPolicy: pulumi.String("Never"),
						Env:             corev1.EnvVarArray{dbPassword},
						SecurityContext: &corev1.SecurityContextArgs{
							AllowPrivilegeEscalation: pulumi.Bool(no),
							ReadOnlyRootFilesystem:   pulumi.Bool(true),
							Capabilities:             &corev1.CapabilitiesArgs{Drop: pulumi.ToStringArray([]string{"ALL"})},
						},
						Resources: &corev1.ResourceRequirementsArgs{
							Requests: pulumi.StringMap{"cpu": pulumi.String("50m"), "memory": pulumi.String("64Mi"), "ephemeral-storage": pulumi.String("16Mi")},
							Limits:   pulumi.StringMap{"cpu": pulumi.String("200m"), "memory": pulumi.String("128Mi"), "ephemeral-storage": pulumi.String("64Mi")},
						},
					}},
				},
			},
		},
	}, inNS...)
	return err
}
