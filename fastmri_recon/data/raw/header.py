"""The ISMRMRD XML header of raw data: parsed and checked, de-identified, or built (twix files, export).

A converted file carries its raw data's ISMRMRD header over (`RawHeader`): matrix sizes, fields of
view, encoding limits, sequence and system information — without the parts that identify a person,
a place or a time (`IDENTIFYING_FIELDS`), which are removed before the header is written anywhere.
"""

import dataclasses

from fastmri_recon.data.h5 import Header
from fastmri_recon.data.raw.optional import require
from fastmri_recon.errors import DataError

IDENTIFYING_FIELDS = {
    "subjectInformation": None,
    "studyInformation": None,
    "measurementInformation": ("measurementID", "seriesDate", "seriesTime", "seriesInstanceUIDRoot",
                               "frameOfReferenceUID", "referencedImageSequence", "measurementDependency"),
    "acquisitionSystemInformation": ("institutionName", "stationName", "deviceID", "deviceSerialNumber"),
}
"""Header parts removed on conversion: whole sections (None) or the named fields of a section."""


def _xsd():
    return require("ismrmrd", "reading and writing ISMRMRD headers").xsd


@dataclasses.dataclass(frozen=True)
class RawHeader(Header):
    """A `Header` that writes the (de-identified) ISMRMRD XML it was parsed from, not a minimal one.

    Attributes:
        xml: the ISMRMRD XML header, bytes.
    """

    xml: bytes = b""

    def to_xml(self):
        return self.xml


@dataclasses.dataclass(frozen=True)
class Encoding:
    """What the conversion needs from an ISMRMRD header (its first encoding).

    Attributes:
        header: the `RawHeader` (fastMRI's view: matrix sizes, phase-encoding limits, the XML).
        partition_center, partition_maximum: ``kspace_encoding_step_2`` limits (0, 0 for 2D data).
        recon_fov_mm: reconstruction field of view ``(x, y, z)`` in mm (z: the slice thickness in 2D).
        protocol: the protocol name, or None.
    """

    header: RawHeader
    partition_center: int
    partition_maximum: int
    recon_fov_mm: tuple
    protocol: str = None

    @property
    def is_3d(self):
        return self.header.encoded_size[2] > 1


def _deidentify(document):
    for section, fields in IDENTIFYING_FIELDS.items():
        value = getattr(document, section, None)
        if value is None:
            continue
        if fields is None:
            setattr(document, section, None)
        else:
            for field in fields:
                if hasattr(value, field):
                    setattr(value, field, [] if isinstance(getattr(value, field), list) else None)


def _required(path, value, name):
    if value is None:
        raise DataError(f"{path}: the ISMRMRD header lacks {name}")
    return value


def parse_header(xml, path):
    """Parse, check and de-identify an ISMRMRD XML header.

    Args:
        xml: the header, bytes or str, or the ``ismrmrd.xsd.ismrmrdHeader`` parsed from it (modified).
        path: the file it came from, for messages.

    Returns:
        `Encoding`.

    Raises:
        DataError: naming ``path`` and the field, for XML that is not an ISMRMRD header, a
            non-Cartesian trajectory, or missing matrix sizes, field of view or encoding limits.
    """
    xsd = _xsd()
    document = xml
    if isinstance(xml, (bytes, str)):
        try:
            document = xsd.CreateFromDocument(xml)
        except Exception as err:  # xsdata raises ParserError, TypeError, ValueError for malformed headers
            raise DataError(f"{path}: the ISMRMRD header is not valid ISMRMRD XML ({err})") from None
    encoding = _required(path, (document.encoding or [None])[0], "encoding")
    trajectory = getattr(encoding.trajectory, "value", encoding.trajectory)
    if trajectory != "cartesian":
        raise DataError(f"{path}: unsupported trajectory '{trajectory}' (conversion handles Cartesian data only)")
    spaces = {}
    for space in ("encodedSpace", "reconSpace"):
        value = _required(path, encoding.encodedSpace if space == "encodedSpace" else encoding.reconSpace, space)
        matrix = _required(path, value.matrixSize, f"encoding/{space}/matrixSize")
        fov = _required(path, value.fieldOfView_mm, f"encoding/{space}/fieldOfView_mm")
        spaces[space] = (tuple(int(getattr(matrix, a)) for a in "xyz"), tuple(float(getattr(fov, a)) for a in "xyz"))
    limits = _required(path, encoding.encodingLimits, "encoding/encodingLimits")
    step1 = _required(path, limits.kspace_encoding_step_1, "encoding/encodingLimits/kspace_encoding_step_1")
    step2 = limits.kspace_encoding_step_2
    protocol = getattr(document.measurementInformation, "protocolName", None)
    _deidentify(document)
    text = xsd.ToXML(document)
    header = RawHeader(
        spaces["encodedSpace"][0], spaces["reconSpace"][0], int(step1.center), int(step1.maximum),
        xml=text.encode() if isinstance(text, str) else text,
    )
    return Encoding(
        header, int(step2.center) if step2 else 0, int(step2.maximum) if step2 else 0, spaces["reconSpace"][1], protocol
    )


def build_header(
    encoded_size, recon_size, encoded_fov_mm, recon_fov_mm, step1, step2=(0, 0), protocol=None,
    patient_position="HFS", h1_frequency_hz=0,
):
    """Build an ISMRMRD XML header for Cartesian data.

    Args:
        encoded_size, recon_size: matrix sizes ``(x, y, z)``.
        encoded_fov_mm, recon_fov_mm: fields of view ``(x, y, z)`` in mm.
        step1, step2: ``(center, maximum)`` of ``kspace_encoding_step_1`` / ``_2``.
        protocol: protocol name, or None (then no measurement information).
        patient_position: ISMRMRD patient position (``HFS``, ``FFS``, ...), with the protocol name.
        h1_frequency_hz: the proton resonance frequency (0 when unknown).

    Returns:
        the header, UTF-8 bytes.
    """
    xsd = _xsd()

    def space(matrix, fov):
        return xsd.encodingSpaceType(
            matrixSize=xsd.matrixSizeType(**{a: int(v) for a, v in zip("xyz", matrix)}),
            fieldOfView_mm=xsd.fieldOfViewMm(**{a: float(v) for a, v in zip("xyz", fov)}),
        )

    limit = lambda center, maximum: xsd.limitType(minimum=0, maximum=int(maximum), center=int(center))  # noqa: E731
    encoding = xsd.encodingType(
        encodedSpace=space(encoded_size, encoded_fov_mm),
        reconSpace=space(recon_size, recon_fov_mm),
        encodingLimits=xsd.encodingLimitsType(kspace_encoding_step_1=limit(*step1), kspace_encoding_step_2=limit(*step2)),
        trajectory=xsd.trajectoryType.CARTESIAN,
    )
    measurement = None
    if protocol is not None:
        measurement = xsd.measurementInformationType(protocolName=protocol, patientPosition=patient_position, measurementDependency=[])
    document = xsd.ismrmrdHeader(
        experimentalConditions=xsd.experimentalConditionsType(H1resonanceFrequency_Hz=int(h1_frequency_hz)),
        encoding=[encoding], measurementInformation=measurement, waveformInformation=[],
    )
    text = xsd.ToXML(document)
    return text.encode() if isinstance(text, str) else text
