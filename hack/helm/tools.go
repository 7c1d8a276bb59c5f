//go:build tools

// Package tools keeps the command built by ./install.sh in go.mod/go.sum.
package tools

import (
	_ "helm.sh/helm/v3/cmd/helm"
)
