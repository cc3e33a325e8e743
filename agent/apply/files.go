package apply

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/jeturing/sajet-domains/shared/ingress"
)

// tempPrefix marks our temp files beside config.yml, so recovery removes only ours.
const tempPrefix = ".sajet-tmp-"

func hashOf(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// readLimited reads a config-sized file; a missing file is (nil, nil).
func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, ingress.MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > ingress.MaxFileSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, ingress.MaxFileSize)
	}
	return data, nil
}

// fileHash is the SHA-256 of path's content, "" when the file does not exist.
func fileHash(path string) (string, error) {
	data, err := readLimited(path)
	if err != nil || data == nil {
		return "", err
	}
	return hashOf(data), nil
}

// writeTemp writes data to a new temp file in dir and fsyncs it, so that a rename of it
// publishes complete content.
func writeTemp(dir, base string, data []byte, mode os.FileMode) (string, error) {
	f, err := os.CreateTemp(dir, tempPrefix+base+"-*")
	if err != nil {
		return "", err
	}
	name := f.Name()
	fail := func(err error) (string, error) {
		f.Close()
		os.Remove(name)
		return "", err
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	// CreateTemp makes 0600; cloudflared may run as another user and must read the file.
	if err := f.Chmod(mode); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(name)
		return "", err
	}
	return name, nil
}

// publish renames tmp over path and fsyncs the directory, so the rename itself survives a
// power cut. A crash at any instant leaves either the old or the new complete file.
func publish(tmp, path string) error {
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}

// writeFileAtomic is writeTemp + publish.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := writeTemp(filepath.Dir(path), filepath.Base(path), data, mode)
	if err != nil {
		return err
	}
	return publish(tmp, path)
}

func writeJSONAtomic(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, data, 0o600)
}

// readJSON decodes path into v; a missing file leaves v untouched and reports false.
func readJSON(path string, v any) (bool, error) {
	data, err := readLimited(path)
	if err != nil || data == nil {
		return false, err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	return true, nil
}

// removeStrayTemps deletes temp files a crash left beside path.
func removeStrayTemps(path string) ([]string, error) {
	dir, base := filepath.Dir(path), filepath.Base(path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix+base+"-") {
			p := filepath.Join(dir, e.Name())
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return removed, err
			}
			removed = append(removed, p)
		}
	}
	return removed, nil
}
