package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
)

// execIn runs cmd in a pod's container through the guarded config (the guard checks the pod's
// labels first) and returns stdout. stdin may be nil.
func execIn(ctx context.Context, env *Env, pod *corev1.Pod, container string, cmd []string, stdin io.Reader, stdout io.Writer) error {
	req := env.Client.CoreV1().RESTClient().Post().Resource("pods").Namespace(pod.Namespace).Name(pod.Name).
		SubResource("exec").VersionedParams(&corev1.PodExecOptions{
		Container: container, Command: cmd, Stdin: stdin != nil, Stdout: true, Stderr: true,
	}, scheme.ParameterCodec)
	ex, err := remotecommand.NewSPDYExecutor(env.Config, "POST", req.URL())
	if err != nil {
		return err
	}
	var stderr bytes.Buffer
	err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdin, Stdout: stdout, Stderr: &stderr})
	if err != nil {
		return fmt.Errorf("exec %s in %s/%s: %w: %s", cmd[0], pod.Namespace, pod.Name, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
