package pds

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/welkin-atproto/welkin/pds/blobstore"
)

// parseS3URL reads "s3://ACCESS:SECRET@host[:port]/bucket[/prefix]?region=R&path-style=true&insecure=true".
func parseS3URL(raw string) (blobstore.S3Config, error) {
	var c blobstore.S3Config
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "s3" || u.Host == "" {
		return c, fmt.Errorf("pds: S3 URL must look like s3://ACCESS:SECRET@host/bucket")
	}
	path := strings.Trim(u.Path, "/")
	bucket, prefix, _ := strings.Cut(path, "/")
	if bucket == "" {
		return c, fmt.Errorf("pds: S3 URL %q names no bucket", u.Redacted())
	}
	q := u.Query()
	c.Endpoint = u.Host
	if q.Get("insecure") == "true" {
		// A plain-HTTP endpoint (a local MinIO, say).
		c.Endpoint = "http://" + u.Host
	}
	c.Bucket = bucket
	c.Prefix = prefix
	c.Region = q.Get("region")
	c.PathStyle = q.Get("path-style") == "true"
	if u.User != nil {
		c.AccessKey = u.User.Username()
		c.SecretKey, _ = u.User.Password()
	}
	return c, nil
}
