//go:build tools

// Package tools keeps the KWOK command built by ../install.sh in go.mod/go.sum.
package tools

import (
	_ "sigs.k8s.io/kwok/cmd/kwok"
)
