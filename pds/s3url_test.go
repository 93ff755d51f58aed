package pds

import "testing"

func TestParseS3URL(t *testing.T) {
	c, err := parseS3URL("s3://AK:SK@minio.local:9000/bucket/pre/fix?region=eu-west-1&path-style=true&insecure=true")
	if err != nil {
		t.Fatal(err)
	}
	if c.Endpoint != "http://minio.local:9000" || c.Bucket != "bucket" || c.Prefix != "pre/fix" ||
		c.Region != "eu-west-1" || !c.PathStyle || c.AccessKey != "AK" || c.SecretKey != "SK" {
		t.Errorf("parsed %+v", c)
	}
	c, err = parseS3URL("s3://s3.amazonaws.com/b")
	if err != nil || c.Endpoint != "s3.amazonaws.com" || c.Bucket != "b" || c.AccessKey != "" {
		t.Errorf("parsed %+v, %v", c, err)
	}
	for _, bad := range []string{"http://x/b", "s3://host", "s3:///b", "::"} {
		if _, err := parseS3URL(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
