// Package ui holds the auditor dashboard's static files, served by tlogd under /ui/.
package ui

import "embed"

// Static holds the dashboard: static/index.html, its stylesheet and its
// JavaScript modules. They are served as they are: there is no build step.
//
//go:embed static
var Static embed.FS
