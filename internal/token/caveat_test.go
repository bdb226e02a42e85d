package token

import (
	"reflect"
	"testing"
	"time"
)

func TestParseCaveat(t *testing.T) {
	tests := []struct {
		in   string
		want caveat
		err  string
	}{
		{in: `[0,1700000000,1690000000]`, want: caveat{tag: tagExpiration, expiresAt: 1700000000, notBefore: 1690000000}},
		{in: `[1,["a","b-c"]]`, want: caveat{tag: tagProjectName, values: []string{"a", "b-c"}}},
		{in: `[1,[]]`, want: caveat{tag: tagProjectName, values: []string{}}},
		{in: `[2,["7"]]`, want: caveat{tag: tagProjectID, values: []string{"7"}}},
		{in: `[3,"42"]`, want: caveat{tag: tagRequestUser, userID: "42"}},
		{in: ` [ 3 , "42" ] `, want: caveat{tag: tagRequestUser, userID: "42"}}, // any JSON spacing
		{in: `{"version":1,"permissions":"user"}`, want: caveat{tag: tagLegacyUser}},
		{in: `{"version":1,"permissions":{"projects":["x"]}}`, want: caveat{tag: tagProjectName, values: []string{"x"}}},
		{in: `{"exp":20,"nbf":10}`, want: caveat{tag: tagExpiration, expiresAt: 20, notBefore: 10}},
		{in: `{"project_ids":["1","2"]}`, want: caveat{tag: tagProjectID, values: []string{"1", "2"}}},
		// version 1 wins over exp/nbf, as in Warehouse's adapter.
		{in: `{"version":1,"permissions":"user","exp":1,"nbf":0}`, want: caveat{tag: tagLegacyUser}},

		{in: `{"version":1}`, err: "caveat must be an array"},
		{in: `{"version":1,"permissions":{"other":1}}`, err: "caveat must be an array"},
		{in: `{"exp":1}`, err: "caveat must be an array"},
		{in: `{"version":1,"permissions":{"projects":"a"}}`, err: "invalid values for fields"},
		{in: `{"exp":"1","nbf":0}`, err: "invalid values for fields"},
		{in: `{"project_ids":[1]}`, err: "invalid values for fields"},
		{in: `[]`, err: "caveat array cannot be empty"},
		{in: `3`, err: "caveat must be an array"},
		{in: `null`, err: "caveat must be an array"},
		{in: `[4,"17"]`, want: caveat{tag: tagPublisher, publisherID: "17"}},
		{in: `[4,17]`, err: "invalid values for fields"},
		{in: `[4,"17","x"]`, err: "invalid values for fields"},
		{in: `[5,"publisher"]`, err: "caveat has unknown tag: 5"},
		{in: `[1.0,["a"]]`, err: "caveat has unknown tag: 1.0"},
		{in: `[true,["a"]]`, err: "caveat has unknown tag: true"},
		{in: `[null]`, err: "caveat has unknown tag: null"},
		{in: `[0,1]`, err: "Not enough values"},
		{in: `[3]`, err: "Not enough values"},
		{in: `[0,1,2,3]`, err: "invalid values for fields"},
		{in: `[0,"1",2]`, err: "invalid values for fields"},
		{in: `[0,1e3,2]`, err: "invalid values for fields"},
		{in: `[0,true,2]`, err: "invalid values for fields"},
		{in: `[0,99999999999999999999,2]`, err: "invalid values for fields"},
		{in: `[1,"a"]`, err: "invalid values for fields"},
		{in: `[1,[1]]`, err: "invalid values for fields"},
		{in: `[1,null]`, err: "invalid values for fields"},
		{in: `[3,42]`, err: "invalid values for fields"},
		{in: `[3,"1"] x`, err: "caveat is not valid JSON"},
		{in: `[3,"1"][3,"1"]`, err: "caveat is not valid JSON"},
		{in: "[3,\"\xff\"]", err: "caveat is not valid JSON"},
		{in: ``, err: "caveat is not valid JSON"},
	}
	for _, tt := range tests {
		got, err := parseCaveat([]byte(tt.in))
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("parseCaveat(%s) = %+v, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseCaveat(%s) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

// TestSerializedCaveats pins the wire form: Python's json.dumps with
// separators=(",", ":") and sort_keys=True.
func TestSerializedCaveats(t *testing.T) {
	for got, want := range map[string]string{
		expirationCaveat(1700000000, 1690000000): `[0,1700000000,1690000000]`,
		projectNameCaveat([]string{"a", "b"}):    `[1,["a","b"]]`,
		projectIDCaveat([]string{"12"}):          `[2,["12"]]`,
		requestUserCaveat(42):                    `[3,"42"]`,
	} {
		if got != want {
			t.Errorf("got %s, want %s", got, want)
		}
		if _, err := parseCaveat([]byte(got)); err != nil {
			t.Errorf("parseCaveat(%s): %v", got, err)
		}
	}
}

func TestCaveatChecks(t *testing.T) {
	now := time.Unix(1000, 0)
	exp := caveat{tag: tagExpiration, expiresAt: 1001, notBefore: 1000}
	if r := exp.checkRequest(1, 0, now); r != "" {
		t.Errorf("at nbf: %q", r)
	}
	if r := exp.checkRequest(1, 0, now.Add(-time.Second)); r != reasonExpired {
		t.Errorf("before nbf: %q", r)
	}
	if r := exp.checkRequest(1, 0, now.Add(time.Second)); r != reasonExpired {
		t.Errorf("at exp: %q", r)
	}
	user := caveat{tag: tagRequestUser, userID: "7"}
	if user.checkRequest(7, 0, now) != "" || user.checkRequest(8, 0, now) != reasonWrongUser {
		t.Error("RequestUser check wrong")
	}
	if (caveat{tag: tagLegacyUser}).checkRequest(8, 0, now) != "" {
		t.Error("legacy user caveat failed")
	}
	// A publisher's token (user 0) never satisfies a user caveat, and a
	// user's token (publisher 0) never satisfies a publisher caveat.
	if user.checkRequest(0, 7, now) != reasonWrongUser || (caveat{tag: tagLegacyUser}).checkRequest(0, 7, now) != reasonWrongUser {
		t.Error("user caveat held for a publisher's token")
	}
	pub := caveat{tag: tagPublisher, publisherID: "7"}
	if pub.checkRequest(0, 7, now) != "" || pub.checkRequest(0, 8, now) != reasonWrongPublisher || pub.checkRequest(7, 0, now) != reasonWrongPublisher {
		t.Error("OIDCPublisher check wrong")
	}
	if !pub.isProjectScoped() {
		t.Error("a publisher's token could create projects")
	}
	names := caveat{tag: tagProjectName, values: []string{"a"}}
	if names.checkRequest(1, 0, now) != "" {
		t.Error("project caveat checked without a project")
	}
	if names.checkProject("a", 5) != "" || names.checkProject("b", 5) != "project-scoped token is not valid for project: 'b'" {
		t.Error("ProjectName check wrong")
	}
	ids := caveat{tag: tagProjectID, values: []string{"5"}}
	if ids.checkProject("x", 5) != "" || ids.checkProject("x", 6) != "project-scoped token is not valid for project: 'x'" {
		t.Error("ProjectID check wrong")
	}
	if (caveat{tag: tagProjectName, values: []string{}}).checkProject("a", 1) == "" {
		t.Error("an empty project list allowed a project")
	}
}
