// Package config describes config.yml the way cloudflared's own loader declares it: the same YAML
// keys, the same Go types and the same type names. Decoding a file into these types with yaml.v3
// (the library and version cloudflared uses) therefore fails exactly where cloudflared's loader
// fails, with the same words ("line 5: cannot unmarshal !!int `30` into time.Duration"), and a
// key these types do not declare is exactly a key cloudflared warns about ("field x not found in
// type config.OriginRequestConfig").
//
// The package is named config, and the file's root type configFileSettings, because yaml.v3 names
// Go types by package and type name in its errors. Field comments say what cloudflared does with
// a value only where shared/ingress depends on it.
package config

import (
	"bytes"
	"errors"
	"io"
	"time"

	"gopkg.in/yaml.v3"
)

// configFileSettings is a whole config.yml: the typed keys, and every other top-level key (those
// are command-line flags read from the file) collected as raw values.
type configFileSettings struct {
	Configuration `yaml:",inline"`
	Settings      map[string]interface{} `yaml:",inline"`
}

// Configuration holds the top-level keys cloudflared decodes itself.
type Configuration struct {
	TunnelID string `yaml:"tunnel"`
	// Ingress has no tag: yaml.v3 lower-cases the field name.
	Ingress       []UnvalidatedIngressRule
	WarpRouting   WarpRoutingConfig   `yaml:"warp-routing"`
	OriginRequest OriginRequestConfig `yaml:"originRequest"`
}

// UnvalidatedIngressRule is one entry of the ingress list.
type UnvalidatedIngressRule struct {
	Hostname      string
	Path          string
	Service       string
	OriginRequest OriginRequestConfig `yaml:"originRequest"`
}

// OriginRequestConfig is an originRequest block, global or per rule. A nil field is unset, so a
// rule's value overrides the global one only where the rule sets it.
type OriginRequestConfig struct {
	ConnectTimeout         *CustomDuration `yaml:"connectTimeout"`
	TLSTimeout             *CustomDuration `yaml:"tlsTimeout"`
	TCPKeepAlive           *CustomDuration `yaml:"tcpKeepAlive"`
	NoHappyEyeballs        *bool           `yaml:"noHappyEyeballs"`
	KeepAliveConnections   *int            `yaml:"keepAliveConnections"`
	KeepAliveTimeout       *CustomDuration `yaml:"keepAliveTimeout"`
	HTTPHostHeader         *string         `yaml:"httpHostHeader"`
	OriginServerName       *string         `yaml:"originServerName"`
	MatchSNIToHost         *bool           `yaml:"matchSNItoHost"`
	CAPool                 *string         `yaml:"caPool"`
	NoTLSVerify            *bool           `yaml:"noTLSVerify"`
	DisableChunkedEncoding *bool           `yaml:"disableChunkedEncoding"`
	// BastionMode, after the rule's value is merged over the global one, turns any service
	// that is not unix:, http_status:, hello_world or socks-proxy into the bastion service.
	BastionMode  *bool   `yaml:"bastionMode"`
	ProxyAddress *string `yaml:"proxyAddress"`
	ProxyPort    *uint   `yaml:"proxyPort"`
	ProxyType    *string `yaml:"proxyType"`
	// IPRules of a socks-proxy rule (its own, not the global ones) must each be valid.
	IPRules     []IngressIPRule `yaml:"ipRules"`
	Http2Origin *bool           `yaml:"http2Origin"`
	// Access of a rule (its own, not the global one) is checked: required with audTag needs
	// teamName.
	Access *AccessConfig `yaml:"access"`
}

// AccessConfig is originRequest.access.
type AccessConfig struct {
	Required    bool     `yaml:"required"`
	TeamName    string   `yaml:"teamName"`
	AudTag      []string `yaml:"audTag"`
	Environment string   `yaml:"environment"`
}

// IngressIPRule is one entry of originRequest.ipRules.
type IngressIPRule struct {
	Prefix *string `yaml:"prefix"`
	Ports  []int   `yaml:"ports"`
	Allow  bool    `yaml:"allow"`
}

// WarpRoutingConfig is the warp-routing block.
type WarpRoutingConfig struct {
	ConnectTimeout *CustomDuration `yaml:"connectTimeout"`
	MaxActiveFlows *uint64         `yaml:"maxActiveFlows"`
	TCPKeepAlive   *CustomDuration `yaml:"tcpKeepAlive"`
}

// CustomDuration is a duration written as a Go duration string ("30s"); a bare number is an
// error in YAML (yaml.v3 refuses integers for time.Duration).
type CustomDuration struct {
	time.Duration
}

// UnmarshalYAML decodes through the old-style unmarshaler, as cloudflared's type does, so that
// errors name time.Duration.
func (d *CustomDuration) UnmarshalYAML(unmarshal func(interface{}) error) error {
	return unmarshal(&d.Duration)
}

// ErrEmpty is returned by Load for a file without any YAML document (empty, or only comments).
var ErrEmpty = errors.New("no YAML document")

// Load decodes the first YAML document of data as cloudflared's loader does. The error is
// yaml.v3's, unchanged: cloudflared prints it after "error parsing YAML in config file at PATH: ".
// settings holds the top-level keys that are not Configuration's.
func Load(data []byte) (cfg *Configuration, settings map[string]interface{}, err error) {
	var f configFileSettings
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, ErrEmpty
		}
		return nil, nil, err
	}
	return &f.Configuration, f.Settings, nil
}

// DecodeOriginRequest decodes one originRequest block, given as YAML, into its typed form.
func DecodeOriginRequest(data []byte) (OriginRequestConfig, error) {
	var o OriginRequestConfig
	err := yaml.Unmarshal(data, &o)
	return o, err
}
