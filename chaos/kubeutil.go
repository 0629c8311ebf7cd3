package main

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// scopedDeployment fetches a Deployment in the first scope namespace that holds it, and refuses
// one outside the blast radius.
func scopedDeployment(ctx context.Context, env *Env, name string) (*appsv1.Deployment, error) {
	for _, ns := range env.Scope.Namespaces {
		d, err := env.Client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			continue
		}
		return d, env.Scope.Check("Deployment", d)
	}
	return nil, fmt.Errorf("Deployment %q not found in %v", name, env.Scope.Namespaces)
}

// scopedStatefulSet is scopedDeployment for a StatefulSet.
func scopedStatefulSet(ctx context.Context, env *Env, name string) (*appsv1.StatefulSet, error) {
	for _, ns := range env.Scope.Namespaces {
		s, err := env.Client.AppsV1().StatefulSets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			continue
		}
		return s, env.Scope.Check("StatefulSet", s)
	}
	return nil, fmt.Errorf("StatefulSet %q not found in %v", name, env.Scope.Namespaces)
}

// scopedPods lists the pods in scope that also match sel (an extra, narrower selector).
func scopedPods(ctx context.Context, env *Env, sel string) ([]corev1.Pod, error) {
	extra, err := labels.Parse(sel)
	if err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, ns := range env.Scope.Namespaces {
		l, err := env.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: env.Scope.Selector.String()})
		if err != nil {
			return nil, err
		}
		for _, p := range l.Items {
			if extra.Matches(labels.Set(p.Labels)) {
				out = append(out, p)
			}
		}
	}
	return out, nil
}

func podReady(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func deploymentCondition(d *appsv1.Deployment, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range d.Status.Conditions {
		if d.Status.Conditions[i].Type == t {
			return &d.Status.Conditions[i]
		}
	}
	return nil
}

// rolloutStalled reports a Deployment whose controller gave up waiting for progress.
func rolloutStalled(d *appsv1.Deployment) (bool, string) {
	c := deploymentCondition(d, appsv1.DeploymentProgressing)
	if c != nil && c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded" {
		return true, c.Message
	}
	return false, ""
}

func ptr[T any](v T) *T { return &v }

// scaleStatefulSet sets a StatefulSet's replicas through the scale subresource.
func scaleStatefulSet(ctx context.Context, env *Env, ns, name string, n int32) error {
	_, err := env.Client.AppsV1().StatefulSets(ns).UpdateScale(ctx, name, &autoscalingv1.Scale{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       autoscalingv1.ScaleSpec{Replicas: n},
	}, metav1.UpdateOptions{})
	return err
}

// serviceReadyEndpoints counts the ready endpoints of Service svc in the scope's namespaces from
// its EndpointSlices (what kube-proxy routes to); found is false when no slice exists for it.
func serviceReadyEndpoints(ctx context.Context, env *Env, svc string) (n int, found bool, err error) {
	for _, ns := range env.Scope.Namespaces {
		l, err := env.Client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + svc})
		if err != nil {
			return 0, false, err
		}
		for _, s := range l.Items {
			found = true
			for _, ep := range s.Endpoints {
				if ep.Conditions.Ready == nil || *ep.Conditions.Ready {
					n++
				}
			}
		}
	}
	return n, found, nil
}
